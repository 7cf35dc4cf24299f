// Package postgres is the storage port for one PostgreSQL database cluster
// replicated by streaming replication between nodes on this machine.
//
// Model: a backend is one PostgreSQL node (a data directory and a port) at a
// site; the resource is the replicated cluster (Config.Cluster); each
// backend has one cluster member, the node itself, whose failover_completed
// the adapter records in its state. Promote is pg_promote(); fencing
// rewrites the node's pg_hba.conf to reject every connection (so it holds
// across a restart of the old primary) and cuts the sessions it has; demote
// stops the primary cleanly and starts it again as a standby; resync is
// pg_rewind against the active node followed by a start as its standby; a
// drill clone is a pg_basebackup of a node started on a port of its own.
//
// Each node lives in a directory of its own (Node.Dir): data/ is PGDATA,
// node.conf and pg_hba.conf are written by the adapter, log is the server
// log. postgresql.conf must end with `include_if_exists = '../node.conf'`:
// pg_rewind and pg_basebackup copy postgresql.conf from the source, so every
// per-node setting (port, listen address, primary_conninfo, hba_file) lives
// outside PGDATA, in node.conf, which each copy resolves to its own.
//
// The adapter knows WAL positions, not writes: a forced promote reports
// LostWrites -1 and a data-loss window from the last replayed commit to the
// moment the old primary was fenced (or to the promote, when it was not):
// an upper bound. A replica's Seq is its WAL position (an LSN as a number).
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.Storage = (*Adapter)(nil)

// Config describes the replicated cluster.
type Config struct {
	// Cluster names the resource: the replicated database cluster.
	Cluster string
	// Nodes are the backends, one PostgreSQL node each (two: a primary and
	// its standby).
	Nodes []Node
	// StateDir keeps the adapter's state: roles, fences, freezes, members'
	// failover_completed, drill clones and the idempotency ledger.
	StateDir string
	// CloneDir holds drill clones (default StateDir/clones); OSUser must be
	// able to write it.
	CloneDir string
	// BinDir holds pg_ctl, pg_rewind, pg_basebackup (default
	// /usr/lib/postgresql/15/bin).
	BinDir string
	// OSUser runs the PostgreSQL programs when the adapter runs as root
	// (initdb and postgres refuse root). Default "postgres".
	OSUser string
	// User and Database are what the adapter connects as and to (a
	// superuser: pg_promote, pg_rewind and pg_terminate_backend need one).
	// Password, if any, comes from the environment (PGPASSWORD) or
	// ~/.pgpass, never from this struct, so it is never logged.
	User     string
	Database string
	// HBA are the pg_hba.conf lines of an unfenced node (default: trust
	// from 127.0.0.1 for every database and for replication).
	HBA []string
	// RPO decides in_sync from out_of_sync (default 60s).
	RPO time.Duration
	// CloneHost is the address drill clones listen on (default 127.0.0.1).
	CloneHost string
	// CloneCommand, if set, returns a command prefix that runs a clone's
	// server inside the test bubble of backend (e.g. `ip netns exec NAME`),
	// and the address the clone listens on there. The prefix runs as the
	// adapter's user; the PostgreSQL program under it as OSUser.
	CloneCommand func(backend string) (prefix []string, host string)
}

// Node is one PostgreSQL node: a backend at a site.
type Node struct {
	Name string // the backend name
	Site string
	Dir  string // data/ (PGDATA), node.conf, pg_hba.conf, log
	Host string // default 127.0.0.1
	Port int
	// LinkAddr is host:port where the other nodes stream from this one
	// (default Host:Port): the network path between the sites.
	LinkAddr string
}

// DataDir is the node's PGDATA.
func (n Node) DataDir() string { return filepath.Join(n.Dir, "data") }

func (n Node) link() string {
	if n.LinkAddr != "" {
		return n.LinkAddr
	}
	return net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
}

// Node roles on disk.
const (
	rolePrimary = "primary"
	roleStandby = "standby"
)

type nodeState struct {
	Role string `json:"role"`
	// Diverged: replaced by a forced promote; it may hold writes the active
	// lacks and is resynced before it serves again.
	Diverged bool      `json:"diverged,omitempty"`
	Fenced   bool      `json:"fenced,omitempty"`
	Epoch    int64     `json:"epoch,omitempty"`
	FencedAt time.Time `json:"fenced_at"`
	Frozen   bool      `json:"frozen,omitempty"`

	ReplicationStatus string `json:"replication_status"`
	ActiveBackendID   string `json:"active_backend_id"`
	// MemberActive is the node's own failover_completed record.
	MemberActive string `json:"member_active"`
}

type cloneState struct {
	ID      string `json:"id"`
	Backend string `json:"backend"`
	Dir     string `json:"dir"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	// Bubble is the network namespace the clone runs in ("": the host's).
	Bubble string `json:"bubble,omitempty"`
}

type ledgerEntry struct {
	Op     string          `json:"op"`
	Result json.RawMessage `json:"result"`
}

type state struct {
	// Active is the node whose data is authoritative; Demoted is true
	// between a planned demote of it and the promote that follows, and
	// DemoteLSN is the shutdown checkpoint it stopped at.
	Active    string                 `json:"active"`
	Demoted   bool                   `json:"demoted,omitempty"`
	DemoteLSN int64                  `json:"demote_lsn,omitempty"`
	Nodes     map[string]*nodeState  `json:"nodes"`
	Clones    map[string]*cloneState `json:"clones"`
	Ledger    map[string]ledgerEntry `json:"ledger"`
	NextID    int64                  `json:"next_id"`
}

// Adapter implements drivers.Storage for one replicated cluster.
type Adapter struct {
	cfg   Config
	cred  *syscall.Credential
	mu    sync.Mutex // serialises mutating calls and guards st
	st    state
	nodes map[string]Node
}

// New opens the adapter's state (creating it on first use: a node whose
// data directory has standby.signal starts as a standby, the other as the
// active primary).
func New(cfg Config) (*Adapter, error) {
	const op = "postgres.new"
	if cfg.Cluster == "" || len(cfg.Nodes) != 2 || cfg.StateDir == "" {
		return nil, drivers.Errorf(drivers.Permanent, op, "a cluster name, two nodes and a state dir are required")
	}
	if cfg.BinDir == "" {
		cfg.BinDir = "/usr/lib/postgresql/15/bin"
	}
	if cfg.OSUser == "" {
		cfg.OSUser = "postgres"
	}
	if cfg.User == "" {
		cfg.User = "postgres"
	}
	if cfg.Database == "" {
		cfg.Database = "postgres"
	}
	if len(cfg.HBA) == 0 {
		cfg.HBA = []string{"host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"}
	}
	if cfg.RPO == 0 {
		cfg.RPO = time.Minute
	}
	if cfg.CloneDir == "" {
		cfg.CloneDir = filepath.Join(cfg.StateDir, "clones")
	}
	if cfg.CloneHost == "" {
		cfg.CloneHost = "127.0.0.1"
	}
	a := &Adapter{cfg: cfg, nodes: map[string]Node{}}
	for i := range cfg.Nodes {
		n := &a.cfg.Nodes[i]
		if n.Host == "" {
			n.Host = "127.0.0.1"
		}
		a.nodes[n.Name] = *n
	}
	cred, err := credential(cfg.OSUser)
	if err != nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "%v", err)
	}
	a.cred = cred
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "state dir: %v", err)
	}
	if err := a.mkdirOwned(cfg.CloneDir); err != nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "clone dir: %v", err)
	}
	data, err := os.ReadFile(a.statePath())
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &a.st); err != nil {
			return nil, drivers.Errorf(drivers.Permanent, op, "state %s: %v", a.statePath(), err)
		}
	case errors.Is(err, os.ErrNotExist):
		a.st = state{Nodes: map[string]*nodeState{}, Clones: map[string]*cloneState{}, Ledger: map[string]ledgerEntry{}}
		for _, n := range a.cfg.Nodes {
			ns := &nodeState{Role: rolePrimary, ReplicationStatus: ferry.ReplicationEnabled}
			if _, err := os.Stat(filepath.Join(n.DataDir(), "standby.signal")); err == nil {
				ns.Role = roleStandby
			} else if a.st.Active == "" {
				a.st.Active = n.Name
			}
			a.st.Nodes[n.Name] = ns
		}
		if a.st.Active == "" {
			return nil, drivers.Errorf(drivers.Permanent, op, "no node is a primary (every data dir has standby.signal)")
		}
		if err := a.save(); err != nil {
			return nil, err
		}
	default:
		return nil, drivers.Errorf(drivers.Permanent, op, "state: %v", err)
	}
	return a, nil
}

func credential(osUser string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL must not run as root and OS user %q does not exist: %v", osUser, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (a *Adapter) statePath() string { return filepath.Join(a.cfg.StateDir, "state.json") }

// save writes the state atomically.
func (a *Adapter) save() error {
	data, err := json.MarshalIndent(a.st, "", "  ")
	if err != nil {
		return drivers.Errorf(drivers.Permanent, "postgres.state", "encode: %v", err)
	}
	tmp := a.statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return drivers.Errorf(drivers.Retryable, "postgres.state", "write: %v", err)
	}
	if err := os.Rename(tmp, a.statePath()); err != nil {
		return drivers.Errorf(drivers.Retryable, "postgres.state", "write: %v", err)
	}
	return nil
}

// mkdirOwned creates dir owned by the OS user that runs PostgreSQL.
func (a *Adapter) mkdirOwned(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if a.cred != nil {
		return os.Chown(dir, int(a.cred.Uid), int(a.cred.Gid))
	}
	return nil
}

// writeOwned writes a file owned by the OS user that runs PostgreSQL.
func (a *Adapter) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if a.cred != nil {
		return os.Chown(path, int(a.cred.Uid), int(a.cred.Gid))
	}
	return nil
}

// pg runs one of PostgreSQL's programs as the OS user, bounded by ctx.
func (a *Adapter) pg(ctx context.Context, op string, prefix []string, prog string, args ...string) (string, error) {
	path := filepath.Join(a.cfg.BinDir, prog)
	var cmd *exec.Cmd
	if len(prefix) > 0 {
		argv := append([]string{}, prefix[1:]...)
		if a.cred != nil {
			argv = append(argv, "runuser", "-u", a.cfg.OSUser, "--")
		}
		argv = append(append(argv, path), args...)
		cmd = exec.CommandContext(ctx, prefix[0], argv...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
		if a.cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
		}
	}
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return string(out), &drivers.Error{Kind: drivers.Retryable, Op: op, Err: ctx.Err()}
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return string(out), drivers.Errorf(drivers.Permanent, op, "%s: %v (install postgresql-15)", path, err)
		}
		return string(out), drivers.Errorf(drivers.Retryable, op, "%s %s: %v: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// running reports whether the server of a data dir runs (pg_ctl status).
func (a *Adapter) running(ctx context.Context, dataDir string) bool {
	_, err := a.pg(ctx, "postgres.status", nil, "pg_ctl", "-D", dataDir, "status")
	return err == nil
}

func (a *Adapter) start(ctx context.Context, op string, prefix []string, dir string) error {
	if a.running(ctx, filepath.Join(dir, "data")) {
		return nil
	}
	_, err := a.pg(ctx, op, prefix, "pg_ctl", "-D", filepath.Join(dir, "data"), "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-s", "start")
	return err
}

func (a *Adapter) stop(ctx context.Context, op, dataDir, mode string) error {
	if !a.running(ctx, dataDir) {
		return nil
	}
	_, err := a.pg(ctx, op, nil, "pg_ctl", "-D", dataDir, "-m", mode, "-w", "-t", "60", "-s", "stop")
	return err
}

// writeNodeConf writes the settings that belong to the node itself, not to
// the data it holds; upstream is the node it streams from (nil: none).
func (a *Adapter) writeNodeConf(dir, name, host string, port int, upstream *Node) error {
	lines := []string{
		"# Written by Ferry's postgres adapter: per-node settings, kept outside PGDATA.",
		fmt.Sprintf("port = %d", port),
		fmt.Sprintf("listen_addresses = '%s'", host),
		"unix_socket_directories = ''",
		fmt.Sprintf("hba_file = '%s'", filepath.Join(dir, "pg_hba.conf")),
		fmt.Sprintf("cluster_name = '%s'", name),
	}
	if upstream != nil {
		h, p, _ := net.SplitHostPort(upstream.link())
		lines = append(lines, fmt.Sprintf("primary_conninfo = 'host=%s port=%s user=%s application_name=%s connect_timeout=3'", h, p, a.cfg.User, name))
	} else {
		lines = append(lines, "primary_conninfo = ''")
	}
	return a.writeOwned(filepath.Join(dir, "node.conf"), strings.Join(lines, "\n")+"\n")
}

// writeHBA writes the node's pg_hba.conf: the configured rules, or, while
// fenced, a refusal of every connection.
func (a *Adapter) writeHBA(dir string, fenced bool) error {
	lines := a.cfg.HBA
	if fenced {
		lines = []string{
			"# Fenced by Ferry: this node accepts no connection until it is unfenced.",
			"local all all reject", "host all all 0.0.0.0/0 reject", "host all all ::/0 reject",
			"host replication all 0.0.0.0/0 reject", "host replication all ::/0 reject",
		}
	}
	return a.writeOwned(filepath.Join(dir, "pg_hba.conf"), strings.Join(lines, "\n")+"\n")
}

// connect opens a session to host:port, failing within a few seconds.
func (a *Adapter) connect(ctx context.Context, op, host string, port int) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", host, port, a.cfg.User, a.cfg.Database))
	if err != nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "connection config: %v", err)
	}
	cfg.ConnectTimeout = 3 * time.Second
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(ctx, op, err)
	}
	return c, nil
}

func (a *Adapter) connectNode(ctx context.Context, op string, n Node) (*pgx.Conn, error) {
	c, err := a.connect(ctx, op, n.Host, n.Port)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return c, nil
}

// classify maps an error to the drivers' kinds.
func classify(ctx context.Context, op string, err error) error {
	var de *drivers.Error
	if errors.As(err, &de) {
		return err
	}
	if ctx.Err() != nil {
		return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"):
			return &drivers.Error{Kind: drivers.Unreachable, Op: op, Err: err}
		case strings.HasPrefix(pe.Code, "28"):
			return &drivers.Error{Kind: drivers.Permanent, Op: op, Err: fmt.Errorf("connection refused by pg_hba (fenced?): %w", err)}
		case strings.HasPrefix(pe.Code, "40"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "55"), strings.HasPrefix(pe.Code, "57"):
			return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
		}
		return &drivers.Error{Kind: drivers.Permanent, Op: op, Err: err}
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, syscall.ECONNREFUSED) {
		return &drivers.Error{Kind: drivers.Unreachable, Op: op, Err: err}
	}
	return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
}

// dial tells whether a node answers on its port at all: how the adapter
// tells a fenced node (which answers, and refuses) from a gone one.
func dial(ctx context.Context, op string, n Node) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(n.Host, strconv.Itoa(n.Port)))
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
		}
		return drivers.Errorf(drivers.Unreachable, op, "node %s at %s: %v", n.Name, n.Site, err)
	}
	_ = c.Close()
	return nil
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
