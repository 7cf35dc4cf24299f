package netns

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The test binary doubles as the TCP server and client run inside
// namespaces: `<test binary> netns-helper serve|dial addr [reply]`.
const helperArg = "netns-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		os.Exit(helper(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func helper(args []string) int {
	switch {
	case args[0] == "serve" && len(args) == 3:
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ready")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			_, _ = io.WriteString(c, args[2])
			_ = c.Close()
		}
	case args[0] == "dial" && len(args) == 2:
		c, err := net.DialTimeout("tcp", args[1], 700*time.Millisecond)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Print(string(b))
		return 0
	}
	fmt.Fprintln(os.Stderr, "usage: netns-helper serve addr reply | dial addr")
	return 2
}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return exe
}

// serve runs a TCP server inside ns that answers every connection with
// reply, and returns once it listens. The server stops with the test (or
// earlier, with its namespace): done is closed when it has exited.
func serve(t *testing.T, ns, addr, reply string) (done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command(ctx, ns, self(t), helperArg, "serve", addr, reply)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	select {
	case ok := <-ready:
		require.True(t, ok, "server on %s in %s did not start: %s", addr, ns, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("server on %s in %s: no ready line", addr, ns)
	}
	return exited
}

// dial connects from inside ns to addr and returns the server's reply.
func dial(ctx context.Context, t *testing.T, ns, addr string) (string, error) {
	t.Helper()
	out, err := RunIn(ctx, ns, self(t), helperArg, "dial", addr)
	return string(out), err
}

// env is a two-site test cloud: production and DR, each a namespace named
// with a prefix unique to the test, removed when the test ends however it
// ends.
type env struct {
	prefix   string
	dir      string
	prod, dr string
	cfg      Config
	a        *Adapter
}

func newEnv(t *testing.T) *env {
	t.Helper()
	require.NoError(t, RequireTools(), "the netns adapter needs root, iproute2 and nftables")
	b := make([]byte, 3)
	_, err := rand.Read(b)
	require.NoError(t, err)
	e := &env{prefix: "ft" + hex.EncodeToString(b) + "-", dir: t.TempDir()}
	t.Cleanup(func() { removePrefixed(t, e.prefix) })
	e.prod, e.dr = e.prefix+"prod", e.prefix+"dr"
	e.cfg = Config{
		StateDir:     e.dir,
		Sites:        map[string]string{"prod": e.prod, "dr": e.dr, "gone": e.prefix + "gone"},
		Networks:     map[string]string{"web": "10.77.1.1/24", "db": "10.88.0.1/24"},
		BubblePrefix: e.prefix + "b-",
	}
	ctx := testCtx(t)
	for _, ns := range []string{e.prod, e.dr} {
		require.NoError(t, AddNamespace(ctx, ns))
	}
	e.a, err = New(e.cfg)
	require.NoError(t, err)
	return e
}

func removePrefixed(t *testing.T, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all, err := Namespaces()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, ns := range all {
		if strings.HasPrefix(ns, prefix) {
			if err := DeleteNamespace(ctx, ns); err != nil {
				t.Errorf("cleanup of %s: %v", ns, err)
			}
		}
	}
}

func prefixed(t *testing.T, prefix string) []string {
	t.Helper()
	all, err := Namespaces()
	require.NoError(t, err)
	var out []string
	for _, ns := range all {
		if strings.HasPrefix(ns, prefix) {
			out = append(out, ns)
		}
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
