package openstacktest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newRunner(t *testing.T) *runner {
	t.Helper()
	r := &runner{dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(r.dir, "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stopAll)
	return r
}

func pgid(t *testing.T, r *runner, name string) int {
	t.Helper()
	p := r.find(t, name)
	r.mu.Lock()
	defer r.mu.Unlock()
	return p.cmd.Process.Pid
}

// groupAlive: some process of the group still runs. Zombies do not
// count: here PID 1 reaps orphans only every second or so.
func groupAlive(pg int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		i := strings.LastIndexByte(string(data), ')')
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) > 2 && fields[0] != "Z" && fields[2] == strconv.Itoa(pg) {
			return true
		}
	}
	return false
}

// A service that forks a worker: stopAll takes the whole group, restart
// starts it again with its arguments and keeps the earlier output, and
// kill/resume stop and start it by name.
func TestRunnerLifecycle(t *testing.T) {
	r := newRunner(t)
	// The worker (sleep) ignores nothing but outlives a parent killed
	// alone: only a group kill ends it.
	r.startPlain(t, "svc", "sh", "-c", "echo started; sleep 300 & wait")
	first := pgid(t, r, "svc")
	waitLog(t, r, "started", 1)

	r.restart(t, "svc")
	if groupAlive(first) {
		t.Fatalf("restart left the old process group %d running", first)
	}
	second := pgid(t, r, "svc")
	if second == first {
		t.Fatal("restart did not start a new process")
	}
	waitLog(t, r, "started", 2) // the .out file is appended to

	r.kill(t, "svc")
	if r.running("svc") || groupAlive(second) {
		t.Fatal("kill left the service running")
	}
	r.resume(t, "svc")
	if !r.running("svc") {
		t.Fatal("resume did not start the service")
	}
	third := pgid(t, r, "svc")
	waitLog(t, r, "started", 3)

	r.stopAll()
	if r.running("svc") || groupAlive(third) {
		t.Fatalf("stopAll left process group %d running", third)
	}
}

// waitUntil ends with the process that exited, or with the last status
// when its context ends, and returns nil once check is done.
func TestRunnerWaitUntil(t *testing.T) {
	r := newRunner(t)
	r.startPlain(t, "steady", "sleep", "300")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := r.waitUntil(ctx, 20*time.Millisecond, func() (bool, string) { return false, "still waiting" })
	if err == nil || err.Error() != "still waiting" {
		t.Fatalf("waitUntil at its deadline = %v, want the last status", err)
	}

	n := 0
	err = r.waitUntil(context.Background(), time.Millisecond, func() (bool, string) { n++; return n == 3, "" })
	if err != nil || n != 3 {
		t.Fatalf("waitUntil = %v after %d checks, want nil after 3", err, n)
	}

	r.startPlain(t, "crash", "sh", "-c", "echo boom; exit 3")
	err = r.waitUntil(context.Background(), 20*time.Millisecond, func() (bool, string) { return false, "" })
	if err == nil || !strings.Contains(err.Error(), "crash exited") {
		t.Fatalf("waitUntil with a dead process = %v, want it named", err)
	}
	if !strings.Contains(tailFiles(r.logs(), 5, nil), "boom") {
		t.Fatalf("the log tail lacks the crashed process's output:\n%s", tailFiles(r.logs(), 5, nil))
	}
}

func waitLog(t *testing.T, r *runner, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.count(s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q seen %d times in the logs, want %d:\n%s", s, r.count(s), n, tailFiles(r.logs(), 10, nil))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
