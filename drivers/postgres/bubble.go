package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/netns"
)

var _ drivers.BubbleCloner = (*Adapter)(nil)

// bubbleHost is where a clone inside a bubble listens: the loopback of the
// bubble's own network namespace, which nothing outside it can reach (the
// host's 127.0.0.1 is another interface in another namespace).
const bubbleHost = "127.0.0.1"

// TestFailoverStartIn clones like TestFailoverStart (pg_basebackup of the
// node), but starts each clone's server inside the bubble's network
// namespace (drivers/netns: `ip netns exec BUBBLE`, as the OS user),
// listening on the namespace's own loopback: the clone answers checks run
// inside the bubble and nothing else. Replication into the node keeps
// running. TestFailoverStop stops the clone (pg_ctl signals it by pid,
// whatever its namespace) and deletes it.
//
// A bubble that is not a network namespace of this machine belongs to
// another network port (the simulator's, say): the clone cannot go inside
// it and starts as TestFailoverStart would. It shares TestFailoverStart's
// ledger entries, so a replay of the key through either answers the same
// clones.
func (a *Adapter) TestFailoverStartIn(ctx context.Context, key, backend string, resources []string, bubble string) ([]string, error) {
	const op = "storage.test_failover_start"
	if bubble == "" || !isNamespace(bubble) {
		return a.TestFailoverStart(ctx, key, backend, resources)
	}
	return mutate(ctx, a, op, key, backend, func() ([]string, error) {
		if err := a.checkResources(op, resources); err != nil {
			return nil, err
		}
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return nil, err
		}
		var ids []string
		for range resources {
			a.st.NextID++
			id := fmt.Sprintf("clone-%d", a.st.NextID)
			cl, err := a.cloneIn(ctx, op, n, id, bubble)
			if cl != nil {
				a.st.Clones[id] = cl
			}
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		return ids, nil
	})
}

// isNamespace tells a bubble that is a named network namespace.
func isNamespace(bubble string) bool {
	if strings.ContainsAny(bubble, "/ \t\n") || strings.HasPrefix(bubble, "-") || bubble == "." || bubble == ".." {
		return false
	}
	return netns.Exists(bubble)
}

func (a *Adapter) cloneIn(ctx context.Context, op string, n Node, id, bubble string) (*cloneState, error) {
	dir := filepath.Join(a.cfg.CloneDir, id)
	if err := a.mkdirOwned(dir); err != nil {
		return nil, drivers.Errorf(drivers.Retryable, op, "clone dir: %v", err)
	}
	cl := &cloneState{ID: id, Backend: n.Name, Dir: dir, Host: bubbleHost, Bubble: bubble}
	// The base backup streams from the node, on the host's network.
	if _, err := a.pg(ctx, op, nil, "pg_basebackup", "-h", n.Host, "-p", strconv.Itoa(n.Port), "-U", a.cfg.User,
		"-D", filepath.Join(dir, "data"), "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return cl, err
	}
	for _, f := range []string{"standby.signal", "recovery.signal"} {
		_ = os.Remove(filepath.Join(dir, "data", f))
	}
	// Every port of a fresh namespace is free; one free on the host too
	// makes a connection from the host to the clone's address refused, not
	// answered by some other server.
	port, err := freePort(bubbleHost)
	if err != nil {
		return cl, drivers.Errorf(drivers.Retryable, op, "free port: %v", err)
	}
	cl.Port = port
	if err := a.writeNodeConf(dir, id, bubbleHost, port, nil); err != nil {
		return cl, drivers.Errorf(drivers.Retryable, op, "node.conf: %v", err)
	}
	if err := a.writeOwned(filepath.Join(dir, "pg_hba.conf"), strings.Join(a.cfg.HBA, "\n")+"\n"); err != nil {
		return cl, drivers.Errorf(drivers.Retryable, op, "pg_hba.conf: %v", err)
	}
	return cl, a.start(ctx, op, []string{"ip", "netns", "exec", bubble}, dir)
}

// connectIn opens a session to host:port as seen from inside bubble ("":
// the host's own network): the socket is made in the bubble's namespace,
// so the check's traffic runs there.
func (a *Adapter) connectIn(ctx context.Context, op, bubble, host string, port int) (*pgx.Conn, error) {
	if bubble == "" {
		return a.connect(ctx, op, host, port)
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", host, port, a.cfg.User, a.cfg.Database))
	if err != nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "connection config: %v", err)
	}
	cfg.ConnectTimeout = 3 * time.Second
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialIn(ctx, bubble, network, addr)
	}
	cfg.LookupFunc = func(_ context.Context, h string) ([]string, error) { return []string{h}, nil }
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(ctx, op, err)
	}
	return c, nil
}

// dialIn dials addr (an IP literal) from inside the named network
// namespace: the calling thread enters the namespace for the socket's
// creation and connect, and returns to its own afterwards. A thread that
// cannot return stays locked to this goroutine and dies with it, so no
// other goroutine ever runs in the bubble by accident.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return nil, fmt.Errorf("bubble %s: %w", ns, err)
	}
	defer func() { _ = target.Close() }()
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer func() { _ = own.Close() }()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter bubble %s: %w", ns, err)
	}
	var d net.Dialer
	c, dialErr := d.DialContext(ctx, network, addr)
	if err := setns(own); err != nil {
		// Leave the thread locked: it is in the bubble for good.
		if c != nil {
			_ = c.Close()
		}
		return nil, fmt.Errorf("leave bubble %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return c, dialErr
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// connectClone opens a session to a drill clone from where it answers:
// inside its bubble, or on the host.
func (a *Adapter) connectClone(ctx context.Context, op, id string) (*pgx.Conn, error) {
	a.mu.Lock()
	cl, ok := a.st.Clones[id]
	var c cloneState
	if ok {
		c = *cl
	}
	a.mu.Unlock()
	if !ok {
		return nil, drivers.Errorf(drivers.Permanent, op, "no clone %s", id)
	}
	return a.connectIn(ctx, op, c.Bubble, c.Host, c.Port)
}

// CloneBubble tells which bubble a drill clone runs in ("": on the host).
func (a *Adapter) CloneBubble(id string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cl, ok := a.st.Clones[id]
	if !ok {
		return "", fmt.Errorf("no clone %s", id)
	}
	return cl.Bubble, nil
}

// copyIn picks the copy a check from inside network reads: as copyFor,
// but the drill clones it may read are those inside network when network
// is their bubble, and only those on the host otherwise; a clone in a
// bubble is read from inside that bubble, and never from outside it.
func (v *Verify) copyIn(ctx context.Context, op, name, site, network string) (bubble, host string, port int, what, detail string, err error) {
	a := v.a
	inBubble := false
	a.mu.Lock()
	for _, cl := range a.st.Clones {
		if network != "" && cl.Bubble == network {
			inBubble = true
		}
	}
	a.mu.Unlock()
	if inBubble {
		bubble = network
	}
	host, port, what, detail, err = v.copyFor(ctx, op, name, site, bubble)
	if err != nil || detail != "" || !strings.HasPrefix(what, "drill clone ") {
		return "", host, port, what, detail, err
	}
	if bubble != "" {
		what += " in bubble " + bubble
	}
	return bubble, host, port, what, detail, nil
}
