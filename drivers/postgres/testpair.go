package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPair is a primary and a standby on free ports under a temp dir, with
// the adapter over them: the test harness for this package and for any
// test that needs a real replicated PostgreSQL. Replication between the two
// goes through a link proxy per node, so a test can stall it. Everything
// (servers, clones, directories) is removed at the test's cleanup.
type TestPair struct {
	Adapter *Adapter
	Config  Config
	// Primary and Standby are the nodes as created (pg-a at site-a is the
	// primary, pg-b at site-b its standby); roles change with failovers.
	Primary, Standby Node
	Root             string

	links map[string]*linkProxy
}

// Names used by the pair.
const (
	TestCluster = "pgdb"
	// MarkerTable holds the pair's marker rows: (id text, at timestamptz).
	MarkerTable = "ferry_markers"
)

// NewTestPair creates and starts the pair. PostgreSQL's server programs
// must be installed (Debian: postgresql-15); when the test runs as root
// they run as the postgres OS user.
func NewTestPair(tb testing.TB) *TestPair {
	tb.Helper()
	bin := os.Getenv("FERRY_PG_BINDIR")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	for _, p := range []string{"initdb", "pg_ctl", "pg_rewind", "pg_basebackup", "pg_controldata", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			tb.Fatalf("PostgreSQL server program %s not found in %s: install the Debian package postgresql-15 (apt-get install -y postgresql-15) or set FERRY_PG_BINDIR", p, bin)
		}
	}
	root, err := os.MkdirTemp("", "ferry-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	tp := &TestPair{Root: root, links: map[string]*linkProxy{}}
	cfg := Config{
		Cluster: TestCluster, StateDir: filepath.Join(root, "state"), CloneDir: filepath.Join(root, "clones"),
		BinDir: bin, RPO: time.Minute,
	}
	// A bare adapter first, for its helpers (credentials, files, pg_ctl).
	cred, err := credential("postgres")
	if err != nil {
		tb.Fatal(err)
	}
	h := &Adapter{cfg: cfg, cred: cred}
	h.cfg.OSUser, h.cfg.User, h.cfg.Database = "postgres", "postgres", "postgres"
	h.cfg.HBA = []string{"host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"}
	if err := h.mkdirOwned(root); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tp.logTails(tb)
		}
		tp.destroy(h)
	})

	for _, n := range []struct{ name, site string }{{"pg-a", "site-a"}, {"pg-b", "site-b"}} {
		port, err := freePort("127.0.0.1")
		if err != nil {
			tb.Fatal(err)
		}
		lp, err := newLinkProxy(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			tb.Fatal(err)
		}
		tp.links[n.name] = lp
		cfg.Nodes = append(cfg.Nodes, Node{Name: n.name, Site: n.site, Dir: filepath.Join(root, n.name), Host: "127.0.0.1", Port: port, LinkAddr: lp.addr()})
	}
	tp.Primary, tp.Standby = cfg.Nodes[0], cfg.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const op = "postgres.test_pair"
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	// The primary.
	a, b := tp.Primary, tp.Standby
	must(h.mkdirOwned(a.Dir))
	_, err = h.pg(ctx, op, nil, "initdb", "-D", a.DataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	must(err)
	conf, err := os.ReadFile(filepath.Join(a.DataDir(), "postgresql.conf"))
	must(err)
	must(h.writeOwned(filepath.Join(a.DataDir(), "postgresql.conf"), string(conf)+sharedConf))
	must(h.writeNodeConf(a.Dir, a.Name, a.Host, a.Port, nil))
	must(h.writeHBA(a.Dir, false))
	must(h.start(ctx, op, nil, a.Dir))
	c, err := h.connect(ctx, op, a.Host, a.Port)
	must(err)
	_, err = c.Exec(ctx, `CREATE TABLE `+MarkerTable+` (id text PRIMARY KEY, at timestamptz NOT NULL)`)
	must(err)
	_ = c.Close(ctx)
	// The standby, from a base backup of the primary.
	must(h.mkdirOwned(b.Dir))
	_, err = h.pg(ctx, op, nil, "pg_basebackup", "-h", a.Host, "-p", strconv.Itoa(a.Port), "-U", "postgres", "-D", b.DataDir(), "-X", "stream", "-c", "fast", "--no-sync")
	must(err)
	must(h.writeHBA(b.Dir, false))
	must(h.becomeStandby(ctx, op, b, a))

	cfg.OSUser = "postgres"
	tp.Config = cfg
	tp.Adapter, err = New(cfg)
	must(err)
	// The standby streams.
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := tp.Adapter.probe(ctx, op, b)
		if err == nil && p.recovery {
			var ok bool
			if c, err := h.connect(ctx, op, b.Host, b.Port); err == nil {
				_ = c.QueryRow(ctx, `SELECT count(*) = 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'`).Scan(&ok)
				_ = c.Close(ctx)
			}
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the standby does not stream: %v (see %s)", err, filepath.Join(b.Dir, "log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return tp
}

// sharedConf is appended to postgresql.conf: settings of the data, copied
// by pg_rewind and pg_basebackup, then the node's own settings.
const sharedConf = `
# Ferry test pair
wal_level = replica
wal_log_hints = on
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
wal_retrieve_retry_interval = '200ms'
wal_receiver_timeout = '5s'
wal_sender_timeout = '5s'
shared_buffers = '16MB'
max_connections = 40
fsync = off
log_min_messages = warning
include_if_exists = '../node.conf'
`

// destroy stops every server of the pair and its clones and removes them.
func (tp *TestPair) destroy(h *Adapter) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dirs, _ := filepath.Glob(filepath.Join(tp.Root, "*", "data"))
	more, _ := filepath.Glob(filepath.Join(tp.Root, "clones", "*", "data"))
	for _, d := range append(dirs, more...) {
		_ = h.stop(ctx, "postgres.test_pair", d, "immediate")
	}
	for _, lp := range tp.links {
		lp.close()
	}
	_ = os.RemoveAll(tp.Root)
}

// logTails shows the end of each server's log, to tell why a test failed.
func (tp *TestPair) logTails(tb testing.TB) {
	logs, _ := filepath.Glob(filepath.Join(tp.Root, "*", "log"))
	more, _ := filepath.Glob(filepath.Join(tp.Root, "clones", "*", "log"))
	for _, l := range append(logs, more...) {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		tb.Logf("%s:\n%s", l, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

// NodeAt returns the node at site.
func (tp *TestPair) NodeAt(site string) (Node, error) {
	for _, n := range tp.Config.Nodes {
		if n.Site == site {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("no node at site %q", site)
}

// SetSiteDown stops the node at site at once, as a power loss would (WAL
// not yet streamed stays behind), or starts it again as it was.
func (tp *TestPair) SetSiteDown(ctx context.Context, site string, down bool) error {
	n, err := tp.NodeAt(site)
	if err != nil {
		return err
	}
	if down {
		return tp.Adapter.stop(ctx, "postgres.site_down", n.DataDir(), "immediate")
	}
	return tp.Adapter.start(ctx, "postgres.site_up", nil, n.Dir)
}

// SetStalled cuts (or restores) the replication links between the sites.
func (tp *TestPair) SetStalled(_ context.Context, stalled bool) error {
	for _, lp := range tp.links {
		lp.setBlocked(stalled)
	}
	return nil
}

func (tp *TestPair) conn(ctx context.Context, site string) (*pgx.Conn, error) {
	n, err := tp.NodeAt(site)
	if err != nil {
		return nil, err
	}
	return tp.Adapter.connect(ctx, "postgres.workload", n.Host, n.Port)
}

// WrittenRow is a marker row and the WAL insert positions just before and
// just after its transaction committed.
type WrittenRow struct {
	ID            string
	At            time.Time
	Before, After int64
}

// WriteRow inserts one marker row at the node of site, in a transaction of
// its own.
func (tp *TestPair) WriteRow(ctx context.Context, site string) (WrittenRow, error) {
	c, err := tp.conn(ctx, site)
	if err != nil {
		return WrittenRow{}, err
	}
	defer func() { _ = c.Close(context.Background()) }()
	return writeRow(ctx, c)
}

func writeRow(ctx context.Context, c *pgx.Conn) (WrittenRow, error) {
	w := WrittenRow{ID: randomID()}
	if err := c.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&w.Before); err != nil {
		return w, err
	}
	if err := c.QueryRow(ctx, `INSERT INTO `+MarkerTable+` (id, at) VALUES ($1, clock_timestamp()) RETURNING at`, w.ID).Scan(&w.At); err != nil {
		return w, err
	}
	err := c.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&w.After)
	return w, err
}

// Rows lists the marker ids the node at site holds.
func (tp *TestPair) Rows(ctx context.Context, site string) ([]string, error) {
	c, err := tp.conn(ctx, site)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close(context.Background()) }()
	return rows(ctx, c)
}

func rows(ctx context.Context, c *pgx.Conn) ([]string, error) {
	r, err := c.Query(ctx, `SELECT id FROM `+MarkerTable+` ORDER BY at`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(r, pgx.RowTo[string])
}

func (tp *TestPair) cloneConn(ctx context.Context, id string) (*pgx.Conn, error) {
	return tp.Adapter.connectClone(ctx, "postgres.workload", id)
}

// CloneRows lists the marker ids a drill clone holds.
func (tp *TestPair) CloneRows(ctx context.Context, id string) ([]string, error) {
	c, err := tp.cloneConn(ctx, id)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close(context.Background()) }()
	return rows(ctx, c)
}

// WriteCloneRow inserts a marker row into a drill clone.
func (tp *TestPair) WriteCloneRow(ctx context.Context, id string) (WrittenRow, error) {
	c, err := tp.cloneConn(ctx, id)
	if err != nil {
		return WrittenRow{}, err
	}
	defer func() { _ = c.Close(context.Background()) }()
	return writeRow(ctx, c)
}

// CloneDirs lists the clones on disk (data directories the adapter made).
func (tp *TestPair) CloneDirs() ([]string, error) {
	ents, err := os.ReadDir(tp.Config.CloneDir)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "m-" + hex.EncodeToString(b)
}

// linkProxy forwards TCP to a node; blocked, it cuts every connection and
// refuses new ones: a partition between the sites.
type linkProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	blocked bool
	conns   map[net.Conn]bool
}

func newLinkProxy(target string) (*linkProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lp := &linkProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go lp.serve()
	return lp, nil
}

func (lp *linkProxy) addr() string { return lp.ln.Addr().String() }

func (lp *linkProxy) serve() {
	for {
		in, err := lp.ln.Accept()
		if err != nil {
			return
		}
		go lp.handle(in)
	}
}

func (lp *linkProxy) handle(in net.Conn) {
	if !lp.track(in) {
		_ = in.Close()
		return
	}
	out, err := net.DialTimeout("tcp", lp.target, 3*time.Second)
	if err != nil || !lp.track(out) {
		_ = in.Close()
		if out != nil {
			_ = out.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	_ = in.Close()
	_ = out.Close()
	lp.untrack(in, out)
}

func (lp *linkProxy) track(c net.Conn) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.blocked {
		return false
	}
	lp.conns[c] = true
	return true
}

func (lp *linkProxy) untrack(cs ...net.Conn) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for _, c := range cs {
		delete(lp.conns, c)
	}
}

func (lp *linkProxy) setBlocked(blocked bool) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.blocked = blocked
	if blocked {
		for c := range lp.conns {
			_ = c.Close()
		}
		lp.conns = map[net.Conn]bool{}
	}
}

func (lp *linkProxy) close() {
	lp.setBlocked(true)
	_ = lp.ln.Close()
}
