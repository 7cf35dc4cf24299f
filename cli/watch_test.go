package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/internal/syncbuf"
)

// frames splits a terminal watch's output into the frames it drew: each
// redraw starts by moving up over the last one and clearing it.
func frames(out string) []string {
	out = strings.TrimPrefix(out, "\x1b[?25l")
	out = strings.TrimSuffix(out, "\x1b[?25h")
	return regexp.MustCompile(`\x1b\[\d+A\x1b\[J`).Split(out, -1)
}

var ansiColor = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// watchTTY watches a scripted run as on a terminal, at a fixed clock.
func watchTTY(t *testing.T, noColor bool, script ...ferry.Run) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	tty := true
	c := &cli.CLI{
		API: apiclient.New(fakeRuns(t, script...), nil), Stdin: strings.NewReader(""),
		Stdout: &out, Stderr: &errb, PollInterval: time.Millisecond, TTY: &tty, Location: time.UTC,
		NoColor: noColor, Now: func() time.Time { return *at("12:00:20") },
	}
	code := c.Run(context.Background(), []string{"watch", "r1"})
	return code, out.String(), errb.String()
}

// created sets when each run of a script was created.
func created(script []ferry.Run) []ferry.Run {
	for i := range script {
		script[i].Created = *at("12:00:00")
	}
	return script
}

func TestWatchTerminalFrames(t *testing.T) {
	code, out, stderr := watchTTY(t, true, created(script(ferry.RunCompleted))...)
	require.Equal(t, 0, code, stderr)
	require.True(t, strings.HasPrefix(out, "\x1b[?25l"), "the cursor is hidden while redrawing")
	require.True(t, strings.HasSuffix(out, "\x1b[?25h"), "and shown again at the end")
	fs := frames(out)
	require.Len(t, fs, 4, "one frame per poll")
	require.NotRegexp(t, ansiColor, out, "NoColor: no colour")

	// Waiting for approval: header with elapsed time, the bar, a symbol per
	// step, the running step's live duration, and the exact command.
	first := fs[0]
	require.Equal(t, "Run r1: failover of group shop to site site-b (planned): WAITING_APPROVAL  elapsed 20s", strings.Split(first, "\n")[0])
	require.Contains(t, first, "["+strings.Repeat("█", 10)+strings.Repeat("░", 20)+"] 1/3 steps\n")
	require.Regexp(t, `(?m)^✓  precheck  completed  12:00:00  1s\s+1\s+-$`, first)
	require.Regexp(t, `(?m)^▶  approval  running    12:00:01  19s\s+1\s+-$`, first, "the running step's duration is live")
	require.Regexp(t, `(?m)^·  promote   pending    -\s+-\s+1\s+-$`, first)
	require.Contains(t, first, "\nrun is waiting for approval: ferry approve r1 (or ferry abort r1)\n")
	// Each redraw moves up exactly the lines the last frame drew.
	for i, m := range regexp.MustCompile(`\x1b\[(\d+)A`).FindAllStringSubmatch(out, -1) {
		require.Equal(t, m[1], strconv.Itoa(strings.Count(fs[i], "\n")), "frame %d", i)
	}

	last := fs[3]
	require.Contains(t, last, "): COMPLETED  elapsed 20s")
	require.Contains(t, last, "["+strings.Repeat("█", 30)+"] 3/3 steps")
	require.Regexp(t, `(?m)^✓  promote   completed  12:00:05  36s\s+1\s+-$`, last)
	require.Contains(t, last, "run r1 completed: RPO 2.5s, RTO 41.0s, writes lost 0")
	require.NotContains(t, last, "waiting for approval")

	// A run that does not complete exits 1; its failed step shows its error.
	code, out, _ = watchTTY(t, true, created(script(ferry.RunRolledBack))...)
	require.Equal(t, 1, code)
	fs = frames(out)
	require.Regexp(t, `(?m)^↺  promote   compensated  12:00:05  4s\s+1\s+replica out of sync$`, fs[len(fs)-1])
	require.Contains(t, fs[len(fs)-1], "run r1 rolled_back")
}

func TestWatchTerminalColours(t *testing.T) {
	failed := step("boot-tier-db", "failed", "12:00:05", "12:00:07")
	failed.Error = "server db-1 unhealthy"
	paused := ferry.Run{ID: "r1", Kind: "failover", Group: "shop", State: ferry.RunPaused, Created: *at("12:00:00"),
		Steps: []ferry.Step{step("precheck", "completed", "12:00:00", "12:00:01"), failed}}
	aborted := paused
	aborted.State = ferry.RunAborted

	t.Setenv("NO_COLOR", "")
	code, out, _ := watchTTY(t, false, paused, aborted)
	require.Equal(t, 1, code)
	first := frames(out)[0]
	require.Contains(t, first, "\x1b[1;33mPAUSED\x1b[0m", "the state in bold yellow")
	require.Contains(t, first, "\x1b[32m✓\x1b[0m  precheck", "a completed step's mark in green")
	require.Contains(t, first, "\x1b[31m✗\x1b[0m  boot-tier-db", "a failed one's in red")
	require.Contains(t, first, "\x1b[31mserver db-1 unhealthy\x1b[0m")
	require.Contains(t, first, "\x1b[1;33mrun is paused at step boot-tier-db: ferry retry r1, ferry skip r1 or ferry abort r1\x1b[0m")
	// Colours do not break the columns: without them the lines align.
	plain := ansiColor.ReplaceAllString(first, "")
	require.Regexp(t, `(?m)^✓  precheck      completed  12:00:00  1s\s+1\s+-$`, plain)
	require.Regexp(t, `(?m)^✗  boot-tier-db  failed     12:00:05  2s\s+1\s+server db-1 unhealthy$`, plain)

	// NO_COLOR turns them off (https://no-color.org).
	t.Setenv("NO_COLOR", "1")
	_, out, _ = watchTTY(t, false, paused, aborted)
	require.NotRegexp(t, ansiColor, out)
	require.Contains(t, out, "\x1b[J", "still redrawn in place")
}

func TestWatchInterruptedLeavesTheRunRunning(t *testing.T) {
	running := ferry.Run{ID: "r1", Kind: "drill", Group: "shop", State: ferry.RunRunning,
		Steps: []ferry.Step{step("snapshot", "running", "12:00:00", "")}}
	for _, tty := range []bool{false, true} {
		var out, errb syncbuf.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		polls := 0
		api := fakeRuns(t, running)
		c := &cli.CLI{
			API: apiclient.New(api, nil), Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
			PollInterval: 5 * time.Millisecond, TTY: &tty, Location: time.UTC, NoColor: true,
		}
		// Ctrl-C (the ferry command cancels the context on SIGINT) once the
		// watch has drawn something.
		go func() {
			for polls < 1000 && !strings.Contains(out.String(), "snapshot") {
				time.Sleep(5 * time.Millisecond)
				polls++
			}
			cancel()
		}()
		code := c.Run(ctx, []string{"watch", "r1"})
		require.Equal(t, cli.ExitError, code)
		require.Contains(t, errb.String(), "Stopped watching: run r1 is still running and goes on without you.")
		require.Contains(t, errb.String(), "ferry watch r1")
		require.NotContains(t, errb.String(), "context canceled")
		if tty {
			require.True(t, strings.HasSuffix(out.String(), "\x1b[?25h"), "the cursor is shown again")
		}
	}
}

// hostile is a run whose client-chosen texts carry terminal controls: a
// screen clear, a title change ended by BEL, a C1 CSI, a carriage return,
// a bidi override and a DEL, and multi-byte text long enough to be cut.
func hostile() []ferry.Run {
	failed := step("boot\x1b[2J-db", "failed", "12:00:05", "12:00:07")
	failed.Error = "disk \x1b]0;pwned\x07 full\r\n" + strings.Repeat("é", 80)
	failed.Note = "see \u009b31mred\u202e\x7f"
	paused := ferry.Run{ID: "r1", Kind: "failover", Group: "shop\x1b[8m", State: ferry.RunPaused, Created: *at("12:00:00"),
		Steps: []ferry.Step{failed}}
	byEve := paused
	byEve.Steps = []ferry.Step{step("boot\x1b[2J-db", "running", "12:00:05", "")}
	byEve.Events = []ferry.Event{{Action: "pause", By: "eve\x1b[1A\x1b[2K"}}
	aborted := paused
	aborted.State = ferry.RunAborted
	aborted.Message = "gave up\x1b[?25l " + strings.Repeat("日本", 150)
	return []ferry.Run{paused, byEve, aborted}
}

// requireInert fails when out holds anything a terminal would act on
// (once the watch's own cursor and redraw sequences are taken out) or is
// not UTF-8 (a cut through a character).
func requireInert(t *testing.T, out string) {
	t.Helper()
	require.True(t, utf8.ValidString(out), "no character is cut in two: %q", out)
	for _, r := range out {
		require.False(t, r != '\n' && (unicode.IsControl(r) || r == '\u202e'), "control %U printed: %q", r, out)
	}
}

func TestWatchPrintsNoControlCharactersFromTheAPI(t *testing.T) {
	// One line per change.
	r := run(t, fakeRuns(t, hostile()...), "", "watch", "r1")
	require.Equal(t, cli.ExitError, r.code, r.stderr)
	requireInert(t, r.stdout)
	require.Contains(t, r.stdout, "12:00:07 boot\uFFFD[2J-db  failed: disk \uFFFD]0;pwned\uFFFD full  ", "controls show as U+FFFD, line breaks as spaces")
	require.Contains(t, r.stdout, "run was paused by eve\uFFFD[1A\uFFFD[2K: ferry resume r1\n")
	require.Contains(t, r.stdout, "see \uFFFD31mred\uFFFD\uFFFD")
	require.Contains(t, r.stdout, "(gave up\uFFFD[?25l 日本")
	require.Contains(t, r.stdout, "…)\n", "the message is cut to 200 runes")

	// The live display: only its own cursor and redraw sequences.
	code, out, _ := watchTTY(t, true, hostile()...)
	require.Equal(t, cli.ExitError, code)
	fs := frames(out)
	for _, f := range fs {
		requireInert(t, f)
	}
	require.Contains(t, fs[0], "Run r1: failover of group shop\uFFFD[8m: PAUSED")
	require.Regexp(t, `(?m)^✗  boot\x{FFFD}\[2J-db  failed .* disk \x{FFFD}\]0;pwned\x{FFFD} full é+…$`, fs[0], "the note is cut by runes")
	require.Contains(t, fs[1], "run was paused by eve\uFFFD[1A\uFFFD[2K: ferry resume r1")

	// ferry runs RUN draws the same table once.
	r = run(t, fakeRuns(t, hostile()[2]), "", "runs", "r1")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	requireInert(t, r.stdout)
	require.Contains(t, r.stdout, "boot\uFFFD[2J-db")
}

func TestWatchStopsAtOnceWhenTheTokenIsRefused(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"type":"about:blank","title":"refused","status":%d,"detail":"token fry_x may not read runs\u001b[2J"}`, status)
		}))
		r := run(t, srv.URL, "", "watch", "r1")
		srv.Close()
		require.Equal(t, cli.ExitError, r.code, "status %d", status)
		require.Equal(t, int32(1), calls.Load(), "status %d: no retry mends a refused token", status)
		require.NotContains(t, r.stderr, "retrying")
		require.Contains(t, r.stderr, "token fry_x may not read runs\uFFFD[2J", "the API's message, cleaned")
		requireInert(t, r.stderr)
	}
}

func TestStatusUsageSaysWhenItExits3(t *testing.T) {
	// A lag between one and two RPOs is OK (exit 0), as the monitor sees it.
	r := run(t, "http://127.0.0.1:1", "", "status", "--help")
	require.Equal(t, cli.ExitOK, r.code)
	require.Contains(t, r.stdout, "(exit 3 when a group is past twice its RPO (WARN) or three times / a replica in error (CRIT))")
	require.NotContains(t, r.stdout, "out of its RPO")
}
