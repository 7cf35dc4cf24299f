package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/drivers/sim"
)

// lagBackend holds shop's one share (shop-media) and nothing of crm's, so a
// lag raised on it is shop's alone. The simulator replicates with the
// larger of the pair's lags; b-files keeps the default 2 s.
const lagBackend = "a-files"

// TestLag raises a real replication lag in the simulator of a `ferry dev`
// system and follows it to the operator: the replication monitor observes
// it, `ferry status` (the real CLI against the real API) judges shop WARN
// (past twice its 30 s RPO) and then CRIT (past three times) with exit 3
// while crm stays OK, and the dashboard in Chromium colours shop's
// replicas amber and then red while crm's stay green. With the lag
// cleared, status is OK again (exit 0) and shop green.
func TestLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The monitors look every 2 s (not the demo's 30 s), so the lag shows
	// soon after it builds up. runDev keeps its own 30 s unless the
	// variable is set in the environment.
	t.Setenv("FERRY_MONITOR_INTERVAL", "2s")
	dev := startDevEnv(t, ctx, map[string]string{"FERRY_MONITOR_INTERVAL": "2s"})
	simc := sim.NewClient(dev.sim, nil)

	// Before any fault: every group observed and OK, exit 0.
	st := waitStatus(t, dev, "every group observed OK", func(s statusResult) bool {
		return s.code == cli.ExitOK && s.verdict("shop") == cli.VerdictOK && s.verdict("crm") == cli.VerdictOK
	})
	require.Len(t, st.rows, 2)
	require.Equal(t, 30, st.row("shop").RPOSeconds, "the demo's RPOs, which the lags below are chosen for")
	require.Equal(t, 60, st.row("crm").RPOSeconds)

	b := newLagBrowser(t, ctx, dev)
	b.waitHealth("shop", "green")
	b.waitHealth("crm", "green")

	// WARN: a 75 s link lag. shop-media's secondary falls behind by the
	// age of its oldest unapplied write, which grows from the old 2 s to
	// 75 s and stays there: past twice shop's RPO (60 s), never three
	// times (90 s).
	require.NoError(t, simc.SetLag(ctx, lagBackend, 75*time.Second))
	st = waitStatus(t, dev, "shop WARN", func(s statusResult) bool {
		require.NotEqual(t, cli.VerdictCrit, s.verdict("shop"), "a 75 s lag is not past three times a 30 s RPO: %s", s.out)
		return s.verdict("shop") == cli.VerdictWarn
	})
	require.Equal(t, cli.ExitRPO, st.code, st.errOut)
	require.Equal(t, cli.VerdictOK, st.verdict("crm"), "crm has no replica on %s", lagBackend)
	lag := *st.row("shop").LagSeconds
	require.Greater(t, lag, 60.0)
	require.LessOrEqual(t, lag, 90.0)
	require.Equal(t, "shop-media", worstReplica(st.row("shop")).Resource, "the lag is the share's")
	table := runStatus(t, dev)
	require.Equal(t, cli.ExitRPO, table.code)
	requireRow(t, table.out, "shop", "WARN")
	requireRow(t, table.out, "crm", "OK")

	b.reload()
	b.waitHealth("shop", "amber")
	b.waitHealth("crm", "green")
	require.Equal(t, "amber", b.attr(`#groups tr[data-group="shop"] td > .replica`, "data-colour"), "the lagging replica is listed under the badge")
	require.Contains(t, b.text(`#groups tr[data-group="shop"] td > .replica`), "shop-media @ site-b")
	require.Contains(t, b.text(`#groups tr[data-group="shop"] [data-health]`), "need attention")
	b.shot("dashboard-lag.png", true, true)

	// CRIT: the link stalls (an hour's lag); the share's lag passes 90 s.
	require.NoError(t, simc.SetLag(ctx, lagBackend, time.Hour))
	st = waitStatus(t, dev, "shop CRIT", func(s statusResult) bool { return s.verdict("shop") == cli.VerdictCrit })
	require.Equal(t, cli.ExitRPO, st.code, st.errOut)
	require.Equal(t, cli.VerdictOK, st.verdict("crm"))
	require.Greater(t, *st.row("shop").LagSeconds, 90.0)
	table = runStatus(t, dev)
	require.Equal(t, cli.ExitRPO, table.code)
	requireRow(t, table.out, "shop", "CRIT")
	requireRow(t, table.out, "crm", "OK")

	b.reload()
	b.waitHealth("shop", "red")
	b.waitHealth("crm", "green")
	require.Equal(t, "red", b.attr(`#groups tr[data-group="shop"] td > .replica`, "data-colour"))
	b.shot("dashboard-lag-critical.png", true, false)

	// Cleared: the link is back to the simulator's default 2 s; at the
	// monitor's next look the share has caught up.
	require.NoError(t, simc.SetLag(ctx, lagBackend, 2*time.Second))
	st = waitStatus(t, dev, "every group OK again", func(s statusResult) bool {
		return s.code == cli.ExitOK && s.verdict("shop") == cli.VerdictOK && s.verdict("crm") == cli.VerdictOK
	})
	require.LessOrEqual(t, *st.row("shop").LagSeconds, 30.0)
	b.reload()
	b.waitHealth("shop", "green")
	b.waitHealth("crm", "green")
	b.noProblems()
}

// statusResult is one `ferry status -o json` (or table) through cli.Main.
type statusResult struct {
	code        int
	out, errOut string
	rows        []cli.GroupStatus
}

func (s statusResult) row(group string) cli.GroupStatus {
	for _, r := range s.rows {
		if r.Group == group {
			return r
		}
	}
	return cli.GroupStatus{}
}

func (s statusResult) verdict(group string) string { return s.row(group).Verdict }

// runStatus runs `ferry status` with args through the CLI's real code
// path, with the dev system's URL and admin token and no environment.
func runStatus(t *testing.T, dev devSystem, args ...string) statusResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"status"}, args...), strings.NewReader(""), &out, &errb,
		cli.Options{APIURL: dev.api, Token: dev.token})
	return statusResult{code: code, out: out.String(), errOut: errb.String()}
}

// waitStatus polls `ferry status -o json` until ok holds, for at most
// three minutes (a lag takes a minute or so to build up).
func waitStatus(t *testing.T, dev devSystem, what string, ok func(statusResult) bool) statusResult {
	t.Helper()
	var last statusResult
	for deadline := time.Now().Add(3 * time.Minute); ; {
		last = runStatus(t, dev, "-o", "json")
		require.Contains(t, []int{cli.ExitOK, cli.ExitRPO}, last.code, "ferry status failed: %s", last.errOut)
		require.NoError(t, json.Unmarshal([]byte(last.out), &last.rows), last.out)
		if ok(last) {
			return last
		}
		require.True(t, time.Now().Before(deadline), "ferry status never showed %s; last:\n%s", what, last.out)
		time.Sleep(time.Second)
	}
}

// worstReplica is the group's replica with the largest lag.
func worstReplica(g cli.GroupStatus) apiclient.ReplicaStatus {
	var w apiclient.ReplicaStatus
	for i, r := range g.Replicas {
		if i == 0 || r.LagSecs > w.LagSecs {
			w = r
		}
	}
	return w
}

// requireRow finds the group's row in status's table and the verdict in it.
func requireRow(t *testing.T, table, group, verdict string) {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == group {
			require.Contains(t, f, verdict, "the row of %s: %q", group, line)
			return
		}
	}
	t.Fatalf("no row for %s in:\n%s", group, table)
}

// lagBrowser is a signed-in dashboard tab in headless Chromium, failing
// the test on any console error or exception of the page.
type lagBrowser struct {
	*browser
	mu       sync.Mutex
	problems []string
	shots    string
}

func newLagBrowser(t *testing.T, ctx context.Context, dev devSystem) *lagBrowser {
	t.Helper()
	b := &lagBrowser{shots: t.TempDir()}
	b.browser = newBrowser(t, ctx, func(problem string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.problems = append(b.problems, problem)
	})
	b.do("sign in",
		chromedp.Navigate(dev.api+"/"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("token"), dev.token),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="shop"]`)),
	)
	return b
}

// reload opens the overview anew, which reads every group's replicas at
// once (the page otherwise keeps them for 30 s).
func (b *lagBrowser) reload() {
	b.t.Helper()
	b.do("reload the overview", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="shop"]`)))
}

// waitHealth waits until the group's replica badge has the colour.
func (b *lagBrowser) waitHealth(group, colour string) {
	b.t.Helper()
	sel := `#groups tr[data-group="` + group + `"] [data-health]`
	var seen string
	for deadline := time.Now().Add(time.Minute); ; {
		if seen = evalJS[string](b.browser, `(document.querySelector('`+sel+`') || {dataset: {}}).dataset.health || ''`); seen == colour {
			return
		}
		require.True(b.t, time.Now().Before(deadline), "%s's replicas are %q on the page, not %s", group, seen, colour)
		b.do("wait", chromedp.Sleep(250*time.Millisecond))
	}
}

// shot saves a screenshot in the test's temp dir; dashboard-lag.png goes
// to docs/images/ too with FERRY_UPDATE_SCREENSHOTS=1.
func (b *lagBrowser) shot(name string, full, docs bool) {
	b.t.Helper()
	buf := b.screenshot(full)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name), buf, 0o644))
	if docs && os.Getenv(screenshotsEnv) == "1" {
		require.NoError(b.t, os.WriteFile(filepath.Join("..", "..", "docs", "images", name), buf, 0o644))
	}
	b.t.Logf("screenshot %s (%d bytes)", filepath.Join(b.shots, name), len(buf))
}

func (b *lagBrowser) noProblems() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(b.t, b.problems, "the dashboard logged errors")
}
