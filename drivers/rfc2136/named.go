package rfc2136

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
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

	"github.com/miekg/dns"

	"github.com/ferrydr/ferry/drivers"
)

// NamedPackage is the Debian package that provides named.
const NamedPackage = "bind9"

// Named is a real BIND 9 server, authoritative for one zone that accepts
// dynamic updates signed with one hmac-sha256 key. It runs as a child
// process on 127.0.0.1, as the bind user when started by root, with its
// configuration, zone and journal in a directory of its own. Tests and
// `ferry dev` use it; it is no production server.
type Named struct {
	Addr    string // "127.0.0.1:port", UDP and TCP
	Zone    string // absolute
	KeyName string // absolute
	Secret  string // base64
	Dir     string // configuration, zone file and journal

	cmd    *exec.Cmd
	exited chan struct{}
	log    *tailBuffer
	once   sync.Once
	rmDir  bool
}

// NamedOptions says what zone to serve and where.
type NamedOptions struct {
	// Zone defaults to "ferry.test.".
	Zone string
	// Records are the zone's records at start, besides its SOA and NS.
	Records []drivers.Record
	// Dir is where named keeps its files; a new temporary directory, removed
	// by Stop, if empty.
	Dir string
	// Port defaults to a free port.
	Port int
}

// Config is the adapter's configuration for this server.
func (n *Named) Config() Config {
	return Config{Server: n.Addr, Zone: n.Zone, KeyName: n.KeyName, Secret: n.Secret, Timeout: 2 * time.Second}
}

// Log returns the end of named's own log (it never holds the key).
func (n *Named) Log() string { return n.log.String() }

// StartNamed starts named and returns once it answers for the zone.
func StartNamed(ctx context.Context, opts NamedOptions) (*Named, error) {
	bin, err := exec.LookPath("named")
	if err != nil {
		bin = "/usr/sbin/named"
		if _, serr := os.Stat(bin); serr != nil {
			return nil, fmt.Errorf("named not found: install Debian's %s package (apt-get install -y %s)", NamedPackage, NamedPackage)
		}
	}
	zone := dns.CanonicalName(opts.Zone)
	if opts.Zone == "" {
		zone = "ferry.test."
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	n := &Named{Zone: zone, KeyName: "ferry-test-key.", Secret: base64.StdEncoding.EncodeToString(secret), Dir: opts.Dir}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "ferry-named-"); err != nil {
			return nil, err
		}
		n.rmDir = true
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		if err := n.writeFiles(port, opts.Records); err != nil {
			n.cleanup()
			return nil, err
		}
		if lastErr = n.start(ctx, bin, port); lastErr == nil {
			return n, nil
		}
		if opts.Port != 0 || ctx.Err() != nil {
			break // a port of the caller's, or the caller gave up: no retry
		}
	}
	n.cleanup()
	return nil, lastErr
}

func (n *Named) writeFiles(port int, records []drivers.Record) error {
	conf := fmt.Sprintf(`key %q { algorithm hmac-sha256; secret %q; };
controls { };
options {
	directory %q;
	pid-file none;
	session-keyfile none;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
zone %q {
	type primary;
	file "zone.db";
	allow-update { key %q; };
};
`, n.KeyName, n.Secret, n.Dir, port, n.Zone, n.KeyName)
	var z strings.Builder
	fmt.Fprintf(&z, "$ORIGIN %s\n$TTL 300\n", n.Zone)
	fmt.Fprintf(&z, "@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n")
	for _, r := range records {
		if strings.ContainsAny(r.Name+r.Type+r.Value, "\n\r") {
			return fmt.Errorf("record %q: one line each", r.Name)
		}
		fmt.Fprintf(&z, "%s %d IN %s %s\n", r.Name, r.TTL, r.Type, r.Value)
	}
	for name, body := range map[string]string{"named.conf": conf, "zone.db": z.String()} {
		if err := os.WriteFile(filepath.Join(n.Dir, name), []byte(body), 0o640); err != nil {
			return err
		}
	}
	// A journal of an earlier attempt would not match the new zone file.
	_ = os.Remove(filepath.Join(n.Dir, "zone.db.jnl"))
	return n.chownToBind()
}

// chownToBind gives the directory to the bind user when we are root, since
// named drops to that user and then writes its journal there.
func (n *Named) chownToBind() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("bind")
	if err != nil {
		return fmt.Errorf("user bind is missing: install Debian's %s package", NamedPackage)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(n.Dir, 0o750); err != nil {
		return err
	}
	return filepath.Walk(n.Dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func (n *Named) start(ctx context.Context, bin string, port int) error {
	args := []string{"-g", "-4", "-n", "1", "-c", filepath.Join(n.Dir, "named.conf"), "-p", strconv.Itoa(port)}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "bind")
	}
	n.log = &tailBuffer{max: 64 << 10}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Dir = n.Dir
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	// Its own process group, so that a terminal's ^C reaches Stop, not named.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start named: %w", err)
	}
	n.exited = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	n.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// Ready when it answers the zone's SOA over TCP.
	c := &dns.Client{Net: "tcp", Timeout: 500 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(n.Zone, dns.TypeSOA)
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("named exited at start (%s); its log:\n%s", n.cmd.ProcessState, n.log)
		case <-ctx.Done():
			n.stopProcess()
			return ctx.Err()
		case <-deadline.C:
			n.stopProcess()
			return fmt.Errorf("named did not answer on %s within 15s; its log:\n%s", n.Addr, n.log)
		case <-tick.C:
			if strings.Contains(n.log.String(), "address in use") {
				n.stopProcess()
				return fmt.Errorf("named: port %d is taken", port)
			}
			if r, _, err := c.Exchange(q, n.Addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
				return nil
			}
		}
	}
}

// Stop ends named (SIGTERM, then SIGKILL after 5s) and removes its
// directory if StartNamed made it. It is safe to call twice.
func (n *Named) Stop() error {
	var err error
	n.once.Do(func() {
		err = n.stopProcess()
		n.cleanup()
	})
	return err
}

func (n *Named) stopProcess() error {
	if n.cmd == nil || n.cmd.Process == nil {
		return nil
	}
	select {
	case <-n.exited:
		return nil
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return nil
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
		return errors.New("named ignored SIGTERM for 5s and was killed")
	}
}

func (n *Named) cleanup() {
	if n.rmDir {
		_ = os.RemoveAll(n.Dir)
	}
}

// TB is the part of testing.TB that StartTestServer needs; this package
// does not import testing.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

// StartTestServer starts a Named for one test and stops it at the test's
// cleanup; named's log is printed if the test failed. It fails the test,
// saying what to install, if named is missing.
func StartTestServer(tb TB, records ...drivers.Record) *Named {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := StartNamed(ctx, NamedOptions{Records: records})
	if err != nil {
		tb.Fatalf("rfc2136: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("named's log:\n%s", n.Log())
		}
		if err := n.Stop(); err != nil {
			tb.Logf("rfc2136: %v", err)
		}
	})
	return n
}

// freePort returns a port that is free on 127.0.0.1 for both TCP and UDP
// right now (named needs both).
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP on 127.0.0.1")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
