package openstacktest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runner starts and stops the processes of one harness: each in its own
// process group (oslo.service forks workers, cinder-volume and
// manila-share a child per backend, and the whole group must go), with
// stdout and stderr in log/<name>.out under dir and, for OpenStack
// services, their own log in log/<name>.log.
type runner struct {
	dir string   // working directory; logs go to dir/log
	env []string // nil: the test's environment

	mu    sync.Mutex
	procs []*proc // in start order
}

// proc is one named service process. It keeps how it was started so
// that it can be started again after a stop.
type proc struct {
	name    string
	bin     string
	args    []string
	logFile string    // the service's --log-file, "" for none
	out     string    // stdout and stderr
	cmd     *exec.Cmd // nil while stopped
}

// start starts an OpenStack service (an oslo.log user) with --log-file
// log/<name>.log appended to args.
func (r *runner) start(tb testing.TB, name, bin string, args ...string) {
	tb.Helper()
	r.add(tb, &proc{name: name, bin: bin, args: args, logFile: filepath.Join(r.dir, "log", name+".log")})
}

// startPlain starts a process that logs only to stdout and stderr.
func (r *runner) startPlain(tb testing.TB, name, bin string, args ...string) {
	tb.Helper()
	r.add(tb, &proc{name: name, bin: bin, args: args})
}

func (r *runner) add(tb testing.TB, p *proc) {
	tb.Helper()
	p.out = filepath.Join(r.dir, "log", p.name+".out")
	r.mu.Lock()
	for _, q := range r.procs {
		if q.name == p.name {
			r.mu.Unlock()
			tb.Fatalf("openstacktest: process %s started twice", p.name)
		}
	}
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	r.spawn(tb, p)
}

// spawn starts p's process. The .out file is appended to, so that a
// restarted service's earlier output stays readable.
func (r *runner) spawn(tb testing.TB, p *proc) {
	tb.Helper()
	out, err := os.OpenFile(p.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	args := p.args
	if p.logFile != "" {
		args = append(append([]string(nil), args...), "--log-file", p.logFile)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", p.bin, err)
	}
	r.mu.Lock()
	p.cmd = cmd
	r.mu.Unlock()
}

func (r *runner) find(tb testing.TB, name string) *proc {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		if p.name == name {
			return p
		}
	}
	tb.Fatalf("openstacktest: no process %s", name)
	return nil
}

// take marks p stopped and returns the command that ran (nil if none).
func (r *runner) take(p *proc) *exec.Cmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := p.cmd
	p.cmd = nil
	return cmd
}

// running reports whether the named process was started and not stopped.
func (r *runner) running(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		if p.name == name {
			return p.cmd != nil
		}
	}
	return false
}

// kill ends a process's group with SIGKILL, the way a lost site ends.
func (r *runner) kill(tb testing.TB, name string) {
	tb.Helper()
	cmd := r.take(r.find(tb, name))
	if cmd == nil {
		tb.Fatalf("%s is not running", name)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// resume starts a stopped process again with its arguments.
func (r *runner) resume(tb testing.TB, name string) {
	tb.Helper()
	p := r.find(tb, name)
	if r.running(name) {
		tb.Fatalf("%s is already running", name)
	}
	r.spawn(tb, p)
}

// restart stops a process gracefully (see halt) and starts it again.
func (r *runner) restart(tb testing.TB, name string) {
	tb.Helper()
	p := r.find(tb, name)
	if cmd := r.take(p); cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		halt(cmd)
	}
	r.spawn(tb, p)
}

// stopAll sends SIGTERM to every running group at once (they shut down
// in parallel) and then halts each.
func (r *runner) stopAll() {
	var cmds []*exec.Cmd
	r.mu.Lock()
	for _, p := range r.procs {
		if p.cmd != nil {
			cmds = append(cmds, p.cmd)
			p.cmd = nil
		}
	}
	r.mu.Unlock()
	for _, c := range cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for _, c := range cmds {
		halt(c)
	}
}

// halt waits up to 10 s for a process that was sent SIGTERM, then kills
// its group, and kills the group once more for children that outlived
// their parent (a backend's worker).
func halt(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// exited names a running process that has ended ("" if none).
func (r *runner) exited() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		if p.cmd != nil && (p.cmd.ProcessState != nil || processGone(p.cmd)) {
			return p.name
		}
	}
	return ""
}

// processGone: the process (or its group leader) has exited but nobody
// waited for it yet.
func processGone(p *exec.Cmd) bool {
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(p.Process.Pid, &ws, syscall.WNOHANG, nil)
	return err == nil && pid == p.Process.Pid
}

// waitUntil calls check every interval until it reports done. It fails
// when ctx ends first, with the last status check gave, or when one of
// the running processes exits: a service that died will not come up.
func (r *runner) waitUntil(ctx context.Context, every time.Duration, check func() (done bool, status string)) error {
	var last string
	for {
		if name := r.exited(); name != "" {
			return fmt.Errorf("%s exited while starting", name)
		}
		done, status := check()
		if done {
			return nil
		}
		last = status
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s", last)
		case <-time.After(every):
		}
	}
}

// logs are the log files of every process ever started, in start order.
func (r *runner) logs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ls []string
	for _, p := range r.procs {
		if p.logFile != "" {
			ls = append(ls, p.logFile)
		}
		ls = append(ls, p.out)
	}
	return ls
}

// grep reports whether some log contains s.
func (r *runner) grep(s string) bool {
	return r.count(s) > 0
}

// count says how many times s occurs in the logs.
func (r *runner) count(s string) int {
	n := 0
	for _, l := range r.logs() {
		if data, err := os.ReadFile(l); err == nil {
			n += bytes.Count(data, []byte(s))
		}
	}
	return n
}

// tailFiles returns the last lines of each file, for failure messages;
// keep, when not nil, drops the lines that say nothing. Missing and empty
// files are left out.
func tailFiles(paths []string, lines int, keep func([]string) []string) string {
	var b strings.Builder
	for _, l := range paths {
		data, err := os.ReadFile(l)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if keep != nil {
			if ls = keep(ls); len(ls) == 0 {
				continue
			}
		}
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", l, strings.Join(ls, "\n"))
	}
	return b.String()
}

// tail returns the last lines of data.
func tail(data []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
