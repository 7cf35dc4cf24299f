package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/cli"
)

// FuzzCLIArgs runs the CLI with any arguments (one per line of args) and
// any stdin against an API that answers 404 to everything: it must never
// panic, and its exit code is 0, 1 or 2.
func FuzzCLIArgs(f *testing.F) {
	for _, s := range []string{
		"", "help", "--help", "nope", "apply", "apply\n-f", "apply\n-f\n-", "apply\n-f\nmissing.yaml",
		"failover", "failover\nshop", "failover\nshop\n--yes", "failover\nshop\n--yes\n--detach",
		"failover\nshop\n--unplanned\n--target\nsite-b\n--yes", "failover\nshop\n--dry-run",
		"failover\nshop\n--quiesce-policy\nmaybe", "failover\n\x00", "failover\n \n--yes",
		"runs", "runs\n--limit\n-1", "runs\n--limit\nx", "runs\n--state\nnope\n--group\nshop",
		"watch", "watch\nrun-1", "report\nrun-1\n--markdown", "report", "groups", "sites\nextra", "backends",
		"approve\nrun-1", "pause\nrun-1\n--comment\nc", "resume", "abort\nrun-1\nrun-2", "retry\n-h", "skip\n--nope",
		"run\nprotect\nshop", "drill-schedule\nshop\n0 3 * * 1", "drill-schedule", "schedules", "replication\nshop",
		"drill\nshop\n--hold\n-5", "evacuate\nsite-a\n--concurrency\n0", "protect\nshop", "reprotect",
		"backend-failover\na-block", "share-promote", "--\nfailover", "failover\n--\n--yes",
	} {
		f.Add(s, []byte("y\n"))
	}
	f.Add("apply\n-f\n-", []byte("sites:\n  - name: site-a\n"))
	f.Add("apply\n-f\n-", []byte(`{"sites":[{"name":"site-a"}],"groups":[{"name":"g"}]}`))
	f.Add("apply\n-f\n-", []byte("\x00\xff{"))

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Not found","status":404,"detail":"no such thing"}`))
	}))
	f.Cleanup(api.Close)
	tty := false

	f.Fuzz(func(t *testing.T, args string, stdin []byte) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\n")
		}
		for i, a := range argv {
			// apply -f reads any file: keep it off devices that never end.
			for _, dev := range []string{"/dev", "/proc", "/sys"} {
				a = strings.ReplaceAll(a, dev, "/nonexistent")
			}
			argv[i] = a
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var out, errb bytes.Buffer
		c := &cli.CLI{
			API: apiclient.New(api.URL, nil), Stdin: bytes.NewReader(stdin), Stdout: &out, Stderr: &errb,
			User: "fuzz", PollInterval: time.Millisecond, TTY: &tty, Location: time.UTC,
		}
		code := c.Run(ctx, argv)
		require.Contains(t, []int{cli.ExitOK, cli.ExitError, cli.ExitUsage}, code,
			"ferry %q exited %d\nstdout: %s\nstderr: %s", argv, code, out.String(), errb.String())
		require.NoError(t, ctx.Err(), "ferry %q did not return in time", argv)
	})
}
