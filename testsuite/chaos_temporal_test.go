package testsuite

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry/internal/devserver"
)

// chaosTemporal is the pinned Temporal dev server keeping its state in a
// SQLite file on a fixed port, so that it can be killed and restarted
// mid-run and come back with every workflow it had (the in-memory server of
// devserver.Start loses them).
type chaosTemporal struct {
	p        *proc
	hostPort string
}

func startChaosTemporal(t *testing.T, dir string) *chaosTemporal {
	t.Helper()
	bin := devserver.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("temporal dev server not found at %s (build it with `make temporal`): %v", bin, err)
	}
	port := freeAddr(t)
	host, p, err := net.SplitHostPort(port)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"server", "start-dev",
		"--ip", host, "--port", p, "--headless",
		"--db-filename", filepath.Join(dir, "temporal.db"),
		"--log-level", "warn",
	}, devserver.SearchAttributeArgs()...)
	ct := &chaosTemporal{hostPort: port, p: newProc(t, dir, "temporal", bin, os.Environ(), args...)}
	if err := ct.p.start(); err != nil {
		t.Fatal(err)
	}
	if err := ct.waitReady(); err != nil {
		t.Fatal(err)
	}
	return ct
}

// restart is kill -9 of the server and, after down, a start on the same
// file and port.
func (ct *chaosTemporal) restart(down time.Duration) error {
	ct.p.kill()
	time.Sleep(down)
	if err := ct.p.start(); err != nil {
		return err
	}
	return ct.waitReady()
}

// waitReady returns once the frontend answers and the default namespace
// exists, or says why not.
func (ct *chaosTemporal) waitReady() error {
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		if !ct.p.running() {
			return fmt.Errorf("temporal dev server exited; see %s", ct.p.logPath)
		}
		last = ct.ping()
		if last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("temporal dev server at %s not ready within 2 minutes: %w", ct.hostPort, last)
}

func (ct *chaosTemporal) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: ct.hostPort, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	return err
}

// quietLogger drops the SDK's log lines: the suite's client reconnects
// across server restarts on purpose.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
