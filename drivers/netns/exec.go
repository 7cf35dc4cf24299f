package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// runDir is where iproute2 keeps named network namespaces (NETNS_RUN_DIR).
const runDir = "/run/netns"

// cmdTimeout bounds one ip or nft invocation: they talk to the kernel over
// netlink and answer in milliseconds, so a slow one is a stuck one.
const cmdTimeout = 10 * time.Second

// packages says which Debian package provides each tool, for error messages.
var packages = map[string]string{"ip": "iproute2", "nft": "nftables"}

// RequireTools reports a Permanent error naming the Debian package to
// install when ip (iproute2) or nft (nftables) is missing.
func RequireTools() error {
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return drivers.Errorf(drivers.Permanent, "network.tools",
				"%s not found: install the Debian package %s", tool, packages[tool])
		}
	}
	return nil
}

func perm(op, format string, args ...any) error {
	return drivers.Errorf(drivers.Permanent, op, format, args...)
}

func retryable(op, format string, args ...any) error {
	return drivers.Errorf(drivers.Retryable, op, format, args...)
}

func unreachable(op, format string, args ...any) error {
	return drivers.Errorf(drivers.Unreachable, op, format, args...)
}

// ctxErr turns a finished context into the op's Retryable error: the caller
// gave up, the system did not refuse.
func ctxErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
	}
	return nil
}

// run runs one tool with a timeout and returns its stdout. Failures become
// *drivers.Error: a missing tool or a refused permission is Permanent (no
// retry grants root), anything else Retryable (netlink can be busy).
func run(ctx context.Context, op string, stdin []byte, name string, args ...string) ([]byte, error) {
	if err := ctxErr(ctx, op); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, name, args...)
	cmd.WaitDelay = time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, perm(op, "%s not found: install the Debian package %s", name, packages[name])
	}
	if e := ctxErr(ctx, op); e != nil {
		return nil, e
	}
	if cctx.Err() != nil {
		return nil, retryable(op, "%s %s: no answer within %s", name, strings.Join(args, " "), cmdTimeout)
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = err.Error()
	}
	kind := drivers.Retryable
	if strings.Contains(msg, "Operation not permitted") || strings.Contains(msg, "Permission denied") {
		kind = drivers.Permanent
	}
	return nil, &drivers.Error{Kind: kind, Op: op, Err: fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)}
}

// ipArgs prefixes an ip command with the namespace it acts in ("" is the
// host's own namespace).
func ipArgs(ns string, args ...string) []string {
	if ns == "" {
		return args
	}
	return append([]string{"-n", ns}, args...)
}

func ip(ctx context.Context, op, ns string, args ...string) ([]byte, error) {
	return run(ctx, op, nil, "ip", ipArgs(ns, args...)...)
}

// nft runs an nftables script inside a namespace.
func nft(ctx context.Context, op, ns, script string) error {
	args := []string{"-f", "-"}
	name := "nft"
	if ns != "" {
		args = append([]string{"netns", "exec", ns, "nft"}, args...)
		name = "ip"
	}
	_, err := run(ctx, op, []byte(script), name, args...)
	return err
}

// Exists reports whether the named network namespace exists.
func Exists(ns string) bool {
	if ns == "" {
		return true
	}
	_, err := os.Stat(runDir + "/" + ns)
	return err == nil
}

// Namespaces lists the named network namespaces, sorted.
func Namespaces() ([]string, error) {
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, retryable("network.namespaces", "%v", err)
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// validNS refuses names ip would misread: empty, a path, an option.
func validNS(op, ns string) error {
	if ns == "" || len(ns) > 200 || strings.ContainsAny(ns, "/ \t\n") || strings.HasPrefix(ns, "-") || ns == "." || ns == ".." {
		return perm(op, "invalid namespace name %q", ns)
	}
	return nil
}

// AddNamespace creates a named network namespace with its loopback up. An
// existing one is kept. Sites of a test cloud, and bubbles, are made of it.
func AddNamespace(ctx context.Context, ns string) error {
	const op = "network.add_namespace"
	if err := validNS(op, ns); err != nil {
		return err
	}
	if !Exists(ns) {
		if _, err := ip(ctx, op, "", "netns", "add", ns); err != nil && !Exists(ns) {
			return err
		}
	}
	_, err := ip(ctx, op, ns, "link", "set", "lo", "up")
	return err
}

// DeleteNamespace stops every process inside the namespace (TERM, then KILL)
// and deletes it, so that nothing keeps it, or a link inside it, alive. A
// missing namespace is already deleted.
func DeleteNamespace(ctx context.Context, ns string) error {
	const op = "network.delete_namespace"
	if err := validNS(op, ns); err != nil {
		return err
	}
	if !Exists(ns) {
		return nil
	}
	if err := stopProcesses(ctx, op, ns); err != nil {
		return err
	}
	if _, err := ip(ctx, op, "", "netns", "delete", ns); err != nil && Exists(ns) {
		return err
	}
	return nil
}

// Pids lists the processes running inside a namespace.
func Pids(ctx context.Context, ns string) ([]int, error) {
	out, err := run(ctx, "network.pids", nil, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var p int
		if _, err := fmt.Sscanf(f, "%d", &p); err == nil && p > 1 && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

func stopProcesses(ctx context.Context, op, ns string) error {
	deadline := time.Now().Add(3 * time.Second)
	sig := syscall.SIGTERM
	for {
		pids, err := Pids(ctx, ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if sig == syscall.SIGKILL {
				return retryable(op, "processes %v in %s survive SIGKILL", pids, ns)
			}
			sig, deadline = syscall.SIGKILL, time.Now().Add(3*time.Second)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, sig)
		}
		select {
		case <-ctx.Done():
			return ctxErr(ctx, op)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Command builds a command that runs inside namespace ns ("" is the host).
// Use it for long-running processes (a clone's database, a test listener);
// ip netns exec replaces itself with the command, so cmd.Process is the
// command itself. DeleteNamespace and DestroyBubble stop whatever still runs.
func Command(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// RunIn runs a command inside a bubble (or any namespace) and returns its
// combined output: how a drill's clone and checks run "inside". A missing
// namespace is Permanent; a failing command is Retryable and wraps its
// *exec.ExitError.
func RunIn(ctx context.Context, ns string, cmd ...string) ([]byte, error) {
	const op = "network.run_in"
	if len(cmd) == 0 {
		return nil, perm(op, "no command")
	}
	if err := validNS(op, ns); err != nil {
		return nil, err
	}
	if !Exists(ns) {
		return nil, perm(op, "no namespace %q", ns)
	}
	if err := ctxErr(ctx, op); err != nil {
		return nil, err
	}
	c := Command(ctx, ns, cmd[0], cmd[1:]...)
	c.WaitDelay = time.Second
	out, err := c.CombinedOutput()
	if err != nil {
		if e := ctxErr(ctx, op); e != nil {
			return out, e
		}
		return out, &drivers.Error{Kind: drivers.Retryable, Op: op,
			Err: fmt.Errorf("in %s: %s: %w: %s", ns, strings.Join(cmd, " "), err, strings.TrimSpace(string(out)))}
	}
	return out, nil
}

// link is one interface as `ip -j -d addr show` reports it.
type link struct {
	Name     string `json:"ifname"`
	Alias    string `json:"ifalias"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
	Addrs []struct {
		Family string `json:"family"`
		Local  string `json:"local"`
		Prefix int    `json:"prefixlen"`
		Scope  string `json:"scope"`
	} `json:"addr_info"`
}

// globalAddrs are the link's addresses that route beyond it, as CIDRs.
func (l link) globalAddrs() []string {
	var out []string
	for _, a := range l.Addrs {
		if a.Scope == "global" {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.Prefix))
		}
	}
	return out
}

// links lists the interfaces of a namespace with their addresses.
func links(ctx context.Context, op, ns string) ([]link, error) {
	out, err := ip(ctx, op, ns, "-j", "-d", "addr", "show")
	if err != nil {
		return nil, err
	}
	var ls []link
	if err := json.Unmarshal(out, &ls); err != nil {
		return nil, retryable(op, "reading links of %q: %v", ns, err)
	}
	return ls, nil
}

// Links lists the interface names of a namespace ("" is the host), sorted:
// what leak checks compare before and after.
func Links(ctx context.Context, ns string) ([]string, error) {
	ls, err := links(ctx, "network.links", ns)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Name)
	}
	sort.Strings(out)
	return out, nil
}
