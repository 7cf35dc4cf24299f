package testsuite

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one process of a chaos system that the test kills and restarts:
// a ferry worker, the Temporal dev server. Every start appends to one log
// file, with a line saying which start it is, so a failing test shows what
// each incarnation said.
type proc struct {
	t       *testing.T
	name    string
	path    string
	args    []string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

func newProc(t *testing.T, dir, name, path string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, path: path, args: args, env: env, logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("--- %s log (last 4000 bytes) ---\n%s", name, tail(string(b), 4000))
		}
	})
	return p
}

// start starts the process in its own process group, so a kill reaches
// whatever it started (hook commands) and nothing else.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s: started twice", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(f, "\n=== start %d of %s at %s ===\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// kill is kill -9 of the whole process group: no shutdown hook runs, no
// activity reports its end, no connection is closed politely.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL, 30*time.Second)
}

// stop asks politely (SIGTERM) and kills after ten seconds; it does
// nothing if the process is not running.
func (p *proc) stop() { p.signal(syscall.SIGTERM, 10*time.Second) }

func (p *proc) signal(sig syscall.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
		return
	case <-time.After(wait):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.t.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, cmd.Process.Pid)
	}
}

// running says whether the process was started and has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}
