package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a process the bench started: its own process group, its output
// in a log file. Stop ends it (and only it) by its id.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	log  string
	f    *os.File
	done chan struct{}
}

// StartProc starts bin with args and env (nil: the bench's environment),
// its output going to logPath.
func StartProc(bin string, args, env []string, logPath string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	// Its own group, and ended if the bench dies, so nothing outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proc{Name: bin, cmd: cmd, log: logPath, f: f, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop asks the process to end (SIGTERM) and kills it after 15 s.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	if p.Running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.f.Close()
}

// LogTail is the end of the process's output.
func (p *Proc) LogTail(n int) string {
	b, _ := os.ReadFile(p.log)
	return tail(string(b), n)
}

// WaitLog waits until the process's output contains s.
func (p *Proc) WaitLog(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.log)
		if bytes.Contains(b, []byte(s)) {
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s exited before saying %q: %s", p.Name, s, tail(string(b), 2000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not say %q within %s: %s", p.Name, s, timeout, tail(string(b), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// QuietLogger drops the Temporal SDK's log lines in the bench's own
// clients: the table is the output.
type QuietLogger struct{}

func (QuietLogger) Debug(string, ...any) {}
func (QuietLogger) Info(string, ...any)  {}
func (QuietLogger) Warn(string, ...any)  {}
func (QuietLogger) Error(string, ...any) {}
