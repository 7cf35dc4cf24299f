package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/internal/syncbuf"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/workflows"
)

// chromiumPath is Debian's chromium (package chromium), which .ci/run
// installs. The browser test fails without it: it is never skipped.
const chromiumPath = "/usr/bin/chromium"

// screenshotsEnv, set to 1, makes TestDashboard write its screenshots into
// docs/images/ too, where the operator's guide shows them.
const screenshotsEnv = "FERRY_UPDATE_SCREENSHOTS"

// TestDashboard is a new user after `make run`, in a real headless
// Chromium: the whole dev system (Temporal dev server and its UI, the
// store, the simulator, the worker, the API) runs in-process on spare
// ports; the user signs in with the printed admin token, sees the sites
// and the groups with their replication coloured, starts a drill of shop
// from the page (its dry run shown first, then confirmed), watches it
// complete, opens its report, and finds the run in the Temporal UI by
// group. Each stage is a screenshot (docs/operator-guide.md shows them).
func TestDashboard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dev := startDev(t, ctx)

	shots := t.TempDir()
	shot := func(name string, buf []byte) {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(shots, name), buf, 0o644))
		if os.Getenv(screenshotsEnv) == "1" {
			dir := filepath.Join("..", "..", "docs", "images")
			require.NoError(t, os.MkdirAll(dir, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), buf, 0o644))
		}
		t.Logf("screenshot %s (%d bytes)", filepath.Join(shots, name), len(buf))
	}

	// Whatever goes wrong in the page (an exception, a console error, a
	// failed load or a Content-Security-Policy violation, which Chromium
	// logs as errors) fails the test.
	var (
		mu       sync.Mutex
		problems []string
		others   []string // the Temporal UI's
		watching = true
	)
	b := newBrowser(t, ctx, func(problem string) {
		mu.Lock()
		defer mu.Unlock()
		if watching {
			problems = append(problems, problem)
		} else {
			others = append(others, problem)
		}
	})

	// Sign in with the token `ferry dev` printed.
	b.do("open the dashboard",
		chromedp.Navigate(dev.api+"/"), // redirects to /ui/
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("token"), dev.token),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="shop"] button[data-kind="drill"]`)),
	)
	require.Contains(t, b.text("#who"), "admin")
	sites := b.text("#sites")
	for _, want := range []string{"site-a", "site-b", "a-block", "b-files"} {
		require.Contains(t, sites, want)
	}

	// The replication monitors report within their first tick: the groups'
	// replicas turn green (within their RPO) on the page.
	b.do("replication health",
		chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="shop"] [data-health="green"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="crm"] [data-health="green"]`)),
	)
	require.Equal(t, "never drilled", strings.TrimSpace(b.text(`#groups tr[data-group="shop"] td:nth-child(5)`)))
	shot("dashboard-overview.png", b.screenshot(true))

	// Start a drill: the dry run's plan first, then the confirmation.
	b.do("dry run of a drill",
		chromedp.Click(chromedp.CSS(`#groups tr[data-group="shop"] button[data-kind="drill"]`)),
		chromedp.WaitVisible(chromedp.ID("start-dialog")),
		chromedp.WaitNotVisible(chromedp.ID("start-confirm")), // nothing starts before a dry run
		chromedp.Click(chromedp.ID("start-plan")),
		chromedp.WaitVisible(chromedp.CSS("#plan-steps li")),
		chromedp.WaitVisible(chromedp.ID("start-confirm")),
	)
	steps := b.text("#plan-steps")
	for _, step := range []string{workflows.StepBubble, workflows.StepClone, workflows.StepCleanup} {
		require.Contains(t, steps, step)
	}
	require.NotEmpty(t, strings.TrimSpace(b.text("#plan-pre")), "the dry run lists its preconditions")
	require.Equal(t, "Start drill of shop", b.text("#start-confirm"), "every precondition passed")
	shot("dashboard-dry-run.png", b.screenshot(false))

	b.do("confirm the drill",
		chromedp.Click(chromedp.ID("start-confirm")),
		chromedp.WaitVisible(chromedp.CSS(`#steps tr[data-step]`)),
	)
	hash := evalJS[string](b, `location.hash`)
	m := regexp.MustCompile(`^#/runs/([0-9a-f-]+)$`).FindStringSubmatch(hash)
	require.NotNil(t, m, "the page shows the new run: %q", hash)
	runID := m[1]

	shot("dashboard-run-live.png", b.screenshot(false))

	// Steer it from the page: pause (confirmed, with a comment), see it
	// paused at a step boundary with Resume offered, resume it.
	b.do("pause the drill",
		chromedp.Click(chromedp.CSS(`#run-actions button[data-action="pause"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-dialog")),
		chromedp.SendKeys(chromedp.ID("confirm-comment"), "look inside the bubble"),
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitNotVisible(chromedp.ID("confirm-dialog")),
		chromedp.WaitVisible(chromedp.CSS(`#run-state[data-state="paused"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#run-actions button[data-action="resume"]`)),
	)
	require.Contains(t, b.text("#run-events"), "pause by ferry-dev")
	require.Contains(t, b.text("#run-events"), "look inside the bubble")
	shot("dashboard-run-paused.png", b.screenshot(false))
	b.do("resume the drill",
		chromedp.Click(chromedp.CSS(`#run-actions button[data-action="resume"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-dialog")),
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitNotVisible(chromedp.ID("confirm-dialog")),
	)

	// Watch it, live: the page asks every second, and it ends completed.
	var seen []string
	state := ""
	for deadline := time.Now().Add(3 * time.Minute); state != "completed"; {
		require.True(t, time.Now().Before(deadline), "the drill did not complete on the page; states seen %v", seen)
		state = b.attr("#run-state", "data-state")
		if len(seen) == 0 || seen[len(seen)-1] != state {
			seen = append(seen, state)
		}
		require.NotContains(t, []string{"failed", "rolled_back", "aborted"}, state, "the drill ended badly: %s", b.text("#run-message"))
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("states seen on the page: %v", seen)
	stepStates := evalJS[[]string](b, `[...document.querySelectorAll('#steps tr[data-step] [data-state]')].map(e => e.dataset.state)`)
	require.NotEmpty(t, stepStates)
	for _, s := range stepStates {
		require.Contains(t, []string{"completed", "skipped"}, s, "steps %v", stepStates)
	}
	require.Zero(t, evalJS[int](b, `document.querySelectorAll('#run-actions button').length`), "an ended run has no steering buttons")
	require.Contains(t, b.text("#run-events"), "resume by ferry-dev")
	shot("dashboard-run-completed.png", b.screenshot(false))

	// The Temporal UI links: this run, and every run of the group.
	runLink, groupLink := b.attr("#run-temporal", "href"), b.attr("#run-temporal-group", "href")
	wfID := workflows.GroupWorkflowID("shop")
	require.Equal(t, dev.ui+"/namespaces/default/workflows/"+wfID+"/"+runID+"/history", runLink)
	require.Equal(t, dev.ui+"/namespaces/default/workflows?query="+url.QueryEscape(`FerryGroup="shop"`), groupLink)

	// Its report, fetched with the token and shown in the page.
	b.do("open the report",
		chromedp.Click(chromedp.ID("run-report-open")),
		chromedp.WaitVisible(chromedp.ID("report-panel")),
	)
	if !evalJS[bool](b, `document.getElementById('report-frame').hidden`) {
		// The HTML report, in a sandboxed frame.
		html := evalJS[string](b, `document.getElementById('report-frame').srcdoc`)
		require.Contains(t, html, "<svg", "the report's timeline")
		require.Contains(t, html, runID)
		require.Contains(t, html, "shop")
		b.do("let the frame render", chromedp.Sleep(500*time.Millisecond))
	} else {
		// A server without the HTML report shows its Markdown report.
		md := b.text("#report-text")
		require.Contains(t, md, "# Ferry drill of group shop: completed")
		require.Contains(t, md, runID)
	}
	// The whole report, not the frame's first screen.
	b.do("unfold the report", chromedp.Evaluate[chromedp.Void](`document.getElementById('report-frame').style.height = '1100px'`))
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.ID("report-panel")))
	require.NoError(t, err)
	shot("dashboard-report.png", png)

	// Back on the overview: shop's last drill, and the run in the list.
	b.do("the overview after the drill",
		chromedp.Click(chromedp.CSS(`a[href="#/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#groups tr[data-group="shop"] td:nth-child(5) [data-state="completed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#runs tr[data-run="`+runID+`"] [data-state="completed"]`)),
	)
	require.Equal(t, "#/runs/"+runID, b.attr(`#groups tr[data-group="shop"] td:nth-child(5) a`, "href"))
	require.Equal(t, "never drilled", strings.TrimSpace(b.text(`#groups tr[data-group="crm"] td:nth-child(5)`)))
	shot("dashboard-overview-after-drill.png", b.screenshot(true))

	mu.Lock()
	require.Empty(t, problems, "the dashboard logged errors")
	watching = false // from here on, the Temporal UI's
	mu.Unlock()

	// The Temporal UI, filtered by group, lists the drill's workflow; the
	// replication monitors (no group) are not in the filtered list.
	// The list is read from Temporal's visibility store, which may trail
	// the run by a moment. The group's list holds the drill and its dry
	// run (a read-only workflow of type dry-run, which carries the group
	// too); the replication monitors (no group) are not in it.
	body := b.temporalList(groupLink, runID)
	require.Contains(t, body, wfID)
	require.Contains(t, body, "ferry-dryrun-")
	require.NotContains(t, body, workflows.MonitorWorkflowID("a-block"), "the list is filtered by group")
	shot("temporal-ui-by-group.png", b.screenshot(false))

	// The query docs/operator-guide.md gives for the group's real runs.
	body = b.temporalList(dev.ui+"/namespaces/default/workflows?query="+url.QueryEscape(`FerryGroup = "shop" AND WorkflowType != "dry-run"`), runID)
	require.NotContains(t, body, "ferry-dryrun-")

	// The Temporal UI is not ours to judge: its errors are shown, not failed.
	mu.Lock()
	defer mu.Unlock()
	if len(others) > 0 {
		t.Logf("the Temporal UI's console errors:\n%s", strings.Join(others, "\n"))
	}
}

// temporalList opens a Temporal UI workflows page and waits until it lists
// runID, reading the page each second and reloading it every ten (never
// sooner: the UI takes a few seconds to render on a busy machine). It
// returns the page's text.
func (b *browser) temporalList(link, runID string) string {
	b.t.Helper()
	b.do("open the Temporal UI", chromedp.Navigate(link))
	for deadline, reload := time.Now().Add(2*time.Minute), time.Now().Add(10*time.Second); ; {
		b.do("wait", chromedp.Sleep(time.Second))
		body := evalJS[string](b, `document.body.innerText`)
		if strings.Contains(body, runID) {
			return body
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the Temporal UI did not list run %s at %s; it shows:\n%s", runID, link, body)
		}
		if time.Now().After(reload) {
			b.do("reload", chromedp.Reload())
			reload = time.Now().Add(10 * time.Second)
		}
	}
}

// browser is the test's tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Debian's headless Chromium for the test (failing it,
// never skipping, when chromium is missing) and hands onProblem every
// console error and exception of its pages.
func newBrowser(t *testing.T, ctx context.Context, onProblem func(string)) *browser {
	t.Helper()
	_, err := os.Stat(chromiumPath)
	require.NoError(t, err, "the dashboard's browser tests need Debian's chromium: apt-get install chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1360, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	b := &browser{t: t}
	var cancelBrowser context.CancelFunc
	b.ctx, cancelBrowser = chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	messages := chromedp.Console(b.ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				onProblem(m.String() + " " + m.URL)
			}
		}
	}()
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, steps...), what)
}

// text is the visible text of the first element matching a CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, sel)
	return v
}

func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	require.NoError(b.t, err, sel)
	require.True(b.t, v.Exists, "%s has no %s", sel, name)
	return v.Value
}

// screenshot is a PNG of the viewport, or of the whole page.
func (b *browser) screenshot(full bool) []byte {
	b.t.Helper()
	a := chromedp.CaptureScreenshot()
	if full {
		a = chromedp.FullScreenshot(100) // 100: PNG
	}
	v, err := chromedp.Run(b.ctx, a)
	require.NoError(b.t, err)
	return v
}

func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	require.NoError(b.t, err, expr)
	return v
}

// devSystem is a running `ferry dev`.
type devSystem struct {
	api, ui, token string
	sim            string // the simulator's base URL (its /sim/ fault API)
}

// startDev runs `ferry dev` in-process on spare ports with a fresh
// database, and waits until its API is ready; it stops with the test.
func startDev(t *testing.T, ctx context.Context) devSystem {
	t.Helper()
	return startDevEnv(t, ctx, nil)
}

// startDevEnv is startDev with more configuration (FERRY_* variables).
func startDevEnv(t *testing.T, ctx context.Context, extra map[string]string) devSystem {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	uiURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	simAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	environ := map[string]string{
		"FERRY_TEMPORAL_ADDRESS": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"FERRY_TEMPORAL_UI_URL":  uiURL,
		"FERRY_HTTP_ADDR":        httpAddr,
		"FERRY_SIM_ADDR":         simAddr,
		"FERRY_DATABASE_URL":     storetest.URL(t),
		"FERRY_DATA_DIR":         t.TempDir(),
	}
	maps.Copy(environ, extra)
	cfg, err := config.LoadFrom(environ)
	require.NoError(t, err)

	dctx, stop := context.WithCancel(ctx)
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- runDev(dctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, out)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(time.Minute):
			t.Error("ferry dev did not stop within a minute")
		}
	})

	// Temporal's dev server may take a while to start on a busy machine.
	tokenRE := regexp.MustCompile(`admin token: (\S+)`)
	var token string
	for deadline := time.Now().Add(3 * time.Minute); token == ""; {
		select {
		case err := <-done:
			t.Fatalf("ferry dev ended: %v\n%s", err, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if m := tokenRE.FindStringSubmatch(out.String()); m != nil {
			token = m[1]
		}
		require.True(t, time.Now().Before(deadline), "ferry dev printed no admin token:\n%s", out.String())
	}

	api := "http://" + httpAddr
	require.Eventually(t, func() bool {
		resp, err := http.Get(api + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "the API is not ready")
	return devSystem{api: api, ui: uiURL, token: token, sim: "http://" + simAddr}
}
