package testsuite

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// privatePG is a PostgreSQL cluster of the test's own, on a port of its
// own, that the test may crash and restart: the machine's shared server
// is never touched. Its server programs are Debian's postgresql-15
// (FERRY_PG_BINDIR overrides); a missing one fails the test. As root the
// programs run as the postgres OS user, since initdb and postgres refuse
// root.
type privatePG struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cred *syscall.Credential
}

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bin := os.Getenv("FERRY_PG_BINDIR")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, prog)); err != nil {
			t.Fatalf("PostgreSQL server program %s not found in %s: install postgresql-15 or set FERRY_PG_BINDIR", prog, bin)
		}
	}
	p := &privatePG{t: t, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres OS user: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir(): its parents are private to root, and the server
	// runs as postgres.
	dir, err := os.MkdirTemp("", "ferry-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		if err := p.stop("immediate"); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("--- private PostgreSQL log (last 3000 bytes) ---\n%s", tail(string(b), 3000))
		}
		_ = os.RemoveAll(dir)
	})
	if p.cred != nil {
		if err := os.Chown(dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	data := filepath.Join(dir, "data")
	if out, err := p.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	conf := fmt.Sprintf(`
# the chaos suite's private cluster
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
shared_buffers = '16MB'
max_connections = 100
log_min_messages = warning
`, p.port, dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs one of the server programs as the cluster's OS user.
func (p *privatePG) run(prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, prog), args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (p *privatePG) start() error {
	out, err := p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "-s", "start")
	if err != nil {
		return fmt.Errorf("start private PostgreSQL: %w: %s", err, out)
	}
	return nil
}

// running says whether the server runs (pg_ctl status).
func (p *privatePG) running() bool {
	_, err := p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "status")
	return err == nil
}

// stop stops the server; "immediate" is a crash: no checkpoint, every
// connection cut, recovery from the WAL at the next start.
func (p *privatePG) stop(mode string) error {
	if !p.running() {
		return nil
	}
	if out, err := p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", mode, "-w", "-t", "60", "-s", "stop"); err != nil {
		return fmt.Errorf("stop private PostgreSQL: %w: %s", err, out)
	}
	return nil
}

// createDB creates a database and returns its URL.
func (p *privatePG) createDB(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		p.t.Fatalf("connect to private PostgreSQL: %v", err)
	}
	defer conn.Close(ctx) //nolint:errcheck
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		p.t.Fatalf("create database %s: %v", name, err)
	}
	return p.url(name)
}

func (p *privatePG) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}
