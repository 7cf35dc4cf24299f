package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// PairOptions says where to build a demo pair: a primary and a streaming
// standby on this machine, for `ferry dev --postgres`. The tests use
// NewTestPair instead, which also puts a link proxy between the nodes.
type PairOptions struct {
	// Root holds both nodes and the adapter's state; it must not exist or
	// be empty. Stop removes it.
	Root string
	// Cluster names the resource (default TestCluster).
	Cluster string
	// Nodes are the primary's and the standby's backend name, site and
	// port, in that order (default pg-a at site-a and pg-b at site-b, on
	// free ports).
	Nodes [2]Node
	// BinDir defaults to FERRY_PG_BINDIR or /usr/lib/postgresql/15/bin.
	BinDir string
	// Schema is SQL run on the primary once it is up (tables to fill).
	Schema string
}

// Pair is a running primary and standby with the adapter over them.
type Pair struct {
	Adapter *Adapter
	Config  Config
	Root    string
}

// StartPair creates the primary with initdb, runs opts.Schema on it, makes
// the standby from a base backup and returns once it streams. PostgreSQL's
// server programs must be installed (Debian: postgresql-15); as root they
// run as the postgres OS user. On error nothing is left running.
func StartPair(ctx context.Context, opts PairOptions) (p *Pair, err error) {
	const op = "postgres.start_pair"
	bin := opts.BinDir
	if bin == "" {
		bin = os.Getenv("FERRY_PG_BINDIR")
	}
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	for _, prog := range []string{"initdb", "pg_ctl", "pg_rewind", "pg_basebackup", "pg_controldata", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, prog)); err != nil {
			return nil, fmt.Errorf("PostgreSQL server program %s not found in %s: install the Debian package postgresql-15 (apt-get install -y postgresql-15) or set FERRY_PG_BINDIR", prog, bin)
		}
	}
	if opts.Root == "" {
		return nil, errors.New("postgres: a root directory is required")
	}
	if ents, err := os.ReadDir(opts.Root); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("postgres: %s is not empty", opts.Root)
	}
	cluster := opts.Cluster
	if cluster == "" {
		cluster = TestCluster
	}
	nodes := opts.Nodes
	defaults := [2]Node{{Name: "pg-a", Site: "site-a"}, {Name: "pg-b", Site: "site-b"}}
	for i := range nodes {
		if nodes[i].Name == "" {
			nodes[i].Name, nodes[i].Site = defaults[i].Name, defaults[i].Site
		}
		if nodes[i].Host == "" {
			nodes[i].Host = "127.0.0.1"
		}
		if nodes[i].Port == 0 {
			if nodes[i].Port, err = freePort(nodes[i].Host); err != nil {
				return nil, err
			}
		}
		nodes[i].Dir = filepath.Join(opts.Root, nodes[i].Name)
	}
	cfg := Config{
		Cluster: cluster, Nodes: nodes[:], StateDir: filepath.Join(opts.Root, "state"),
		CloneDir: filepath.Join(opts.Root, "clones"), BinDir: bin, OSUser: "postgres", RPO: time.Minute,
	}
	cred, err := credential("postgres")
	if err != nil {
		return nil, err
	}
	// A bare adapter first, for its helpers (credentials, files, pg_ctl).
	h := &Adapter{cfg: cfg, cred: cred}
	h.cfg.User, h.cfg.Database = "postgres", "postgres"
	h.cfg.HBA = []string{"host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"}
	if err := h.mkdirOwned(opts.Root); err != nil {
		return nil, err
	}
	p = &Pair{Config: cfg, Root: opts.Root}
	defer func() {
		if err != nil {
			p.stop(h)
		}
	}()

	a, b := nodes[0], nodes[1]
	if err := h.mkdirOwned(a.Dir); err != nil {
		return p, err
	}
	if _, err := h.pg(ctx, op, nil, "initdb", "-D", a.DataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		return p, err
	}
	conf, err := os.ReadFile(filepath.Join(a.DataDir(), "postgresql.conf"))
	if err != nil {
		return p, err
	}
	for _, step := range []func() error{
		func() error {
			return h.writeOwned(filepath.Join(a.DataDir(), "postgresql.conf"), string(conf)+sharedConf)
		},
		func() error { return h.writeNodeConf(a.Dir, a.Name, a.Host, a.Port, nil) },
		func() error { return h.writeHBA(a.Dir, false) },
		func() error { return h.start(ctx, op, nil, a.Dir) },
	} {
		if err := step(); err != nil {
			return p, fmt.Errorf("primary %s: %w (see %s)", a.Name, err, filepath.Join(a.Dir, "log"))
		}
	}
	if opts.Schema != "" {
		c, err := h.connect(ctx, op, a.Host, a.Port)
		if err != nil {
			return p, err
		}
		_, err = c.Exec(ctx, opts.Schema)
		_ = c.Close(context.Background())
		if err != nil {
			return p, fmt.Errorf("schema: %w", err)
		}
	}
	if err := h.mkdirOwned(b.Dir); err != nil {
		return p, err
	}
	if _, err := h.pg(ctx, op, nil, "pg_basebackup", "-h", a.Host, "-p", strconv.Itoa(a.Port), "-U", "postgres", "-D", b.DataDir(), "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return p, err
	}
	if err := h.writeHBA(b.Dir, false); err != nil {
		return p, err
	}
	if err := h.becomeStandby(ctx, op, b, a); err != nil {
		return p, fmt.Errorf("standby %s: %w (see %s)", b.Name, err, filepath.Join(b.Dir, "log"))
	}
	if p.Adapter, err = New(cfg); err != nil {
		return p, err
	}
	// Ready when the primary sees the standby streaming.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var streaming int
		if c, err := h.connect(wctx, op, a.Host, a.Port); err == nil {
			_ = c.QueryRow(wctx, `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`).Scan(&streaming)
			_ = c.Close(context.Background())
		}
		if streaming > 0 {
			return p, nil
		}
		select {
		case <-wctx.Done():
			return p, fmt.Errorf("the standby %s does not stream (see %s)", b.Name, filepath.Join(b.Dir, "log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops every server of the pair and its drill clones and removes
// Root.
func (p *Pair) Stop() {
	h := p.Adapter
	if h == nil {
		h = bareAdapter(p.Config.BinDir)
	}
	p.stop(h)
}

// RemovePair stops every server a pair left under root (a `ferry dev`
// that was killed) and removes root. A root that does not exist is fine.
func RemovePair(root string) error {
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	(&Pair{Root: root}).stop(bareAdapter(""))
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("postgres: could not remove %s", root)
	}
	return nil
}

// bareAdapter is enough of an adapter to run pg_ctl.
func bareAdapter(bin string) *Adapter {
	if bin == "" {
		bin = os.Getenv("FERRY_PG_BINDIR")
	}
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	cred, _ := credential("postgres")
	return &Adapter{cfg: Config{BinDir: bin, OSUser: "postgres"}, cred: cred}
}

func (p *Pair) stop(h *Adapter) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dirs, _ := filepath.Glob(filepath.Join(p.Root, "*", "data"))
	more, _ := filepath.Glob(filepath.Join(p.Root, "clones", "*", "data"))
	for _, d := range append(dirs, more...) {
		_ = h.stop(ctx, "postgres.stop_pair", d, "fast")
	}
	_ = os.RemoveAll(p.Root)
}
