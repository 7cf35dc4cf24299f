// Package testsuite holds Ferry's end-to-end tests: the real `ferry` binary
// as separate processes (server, worker, simulator) on a real Temporal dev
// server and the real PostgreSQL, driven through the CLI and the API.
package testsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/workflows"
)

// system is one Ferry deployment made of separate processes.
type system struct {
	t      *testing.T
	bin    string
	env    []string
	apiURL string
	simURL string
	dbURL  string
	api    *apiclient.Client
	sim    *sim.Client
	// token is the install's admin token (FERRY_TOKEN of the CLI verbs).
	token string
	logs  string
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	require.NoError(t, err)
	return filepath.Dir(wd)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func startSystem(t *testing.T) *system {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	build.Dir = repoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build ferry: %s", out)

	temporal := devserver.Start(t)
	apiAddr, simAddr := freeAddr(t), freeAddr(t)
	s := &system{
		t: t, bin: bin, logs: dir,
		apiURL: "http://" + apiAddr, simURL: "http://" + simAddr, dbURL: storetest.URL(t),
	}
	s.env = append(os.Environ(),
		"FERRY_TEMPORAL_ADDRESS="+temporal.HostPort,
		"FERRY_DATABASE_URL="+s.dbURL,
		"FERRY_HTTP_ADDR="+apiAddr,
		"FERRY_API_URL="+s.apiURL,
		"FERRY_SIM_ADDR="+simAddr,
		"FERRY_SIM_URL="+s.simURL,
		"FERRY_TASK_QUEUE=e2e-"+filepath.Base(dir),
	)
	// Every API call needs a token: the first admin token of the install,
	// made with the CLI, for the tests' client and the CLI verbs alike.
	s.token = bootstrapToken(t, bin, s.env)
	s.env = append(s.env, "FERRY_TOKEN="+s.token)
	s.api = apiclient.New(s.apiURL, &http.Client{Timeout: 30 * time.Second}, apiclient.WithToken(s.token))
	s.sim = sim.NewClient(s.simURL, &http.Client{Timeout: 30 * time.Second})

	s.spawn("sim", "--demo", "--boot-time", "100ms", "--lag", "0s", "--workload-interval", "0s")
	s.spawn("server")
	s.spawn("worker")
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return s.api.Ready(ctx) == nil
	}, time.Minute, 100*time.Millisecond, "ferry server never became ready; logs in %s", dir)
	return s
}

// spawn starts `ferry <args>` as its own process, stopped at cleanup; its
// output goes to a log file that a failing test prints.
func (s *system) spawn(args ...string) {
	s.t.Helper()
	logPath := filepath.Join(s.logs, args[0]+".log")
	f, err := os.Create(logPath)
	require.NoError(s.t, err)
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(s.t, cmd.Start())
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		f.Close()
		if s.t.Failed() {
			b, _ := os.ReadFile(logPath)
			s.t.Logf("--- ferry %s log (last 3000 bytes) ---\n%s", args[0], tail(string(b), 3000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// applyDemo applies the demo inventory through the CLI, as a user would,
// and returns what it printed.
func (s *system) applyDemo() string {
	s.t.Helper()
	out, code := s.cli("apply", "-f", filepath.Join(repoRoot(s.t), "demo", "demo.yaml"))
	require.Equal(s.t, 0, code, out)
	return out
}

// cli runs a client verb of the real binary.
func (s *system) cli(args ...string) (string, int) {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(s.t, err)
	}
	return string(out), code
}

func (s *system) waitEnded(ctx context.Context, id string) ferry.Run {
	s.t.Helper()
	var r ferry.Run
	require.Eventually(s.t, func() bool {
		var err error
		r, err = s.api.GetRun(ctx, id)
		return err == nil && ferry.RunEnded(r.State)
	}, 2*time.Minute, 200*time.Millisecond, "run %s did not end (last state %q)", id, r.State)
	return r
}

func resourcesOf(g ferry.Group) []string {
	var out []string
	for _, v := range g.Volumes {
		out = append(out, v.Name)
	}
	for _, sh := range g.Shares {
		out = append(out, sh.Name)
	}
	return out
}

func TestEndToEndFailoverOverSeparateProcesses(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	require.Contains(t, s.applyDemo(), "group/shop created")

	// Every resource of shop gets writes before the planned failover.
	groups := map[string]ferry.Group{}
	for _, g := range demo.Inventory().Groups {
		groups[g.Name] = g
	}
	for _, r := range resourcesOf(groups["shop"]) {
		_, err := s.sim.Write(ctx, r, 5)
		require.NoError(t, err)
	}

	// A planned failover of shop, from the CLI, watched to the end.
	out, code := s.cli("failover", "shop", "--yes")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "completed")
	page, err := s.api.ListRuns(ctx, apiclient.RunFilter{Group: "shop"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	planned := s.waitEnded(ctx, page.Items[0].ID)
	require.Equal(t, ferry.RunCompleted, planned.State, planned.Message)
	require.NotNil(t, planned.WritesLost)
	require.Zero(t, *planned.WritesLost, "a planned failover loses nothing")
	for _, r := range resourcesOf(groups["shop"]) {
		info, err := s.sim.ResourceInfo(ctx, r)
		require.NoError(t, err)
		require.Equal(t, "site-b", info.ActiveSite, r)
		require.EqualValues(t, 5, info.ActiveSeq, r)
		require.Zero(t, info.LostWrites, r)
	}

	// An unplanned failover of crm: replication stalls, the primary keeps
	// writing, then site-a dies. The run must report exactly what was lost.
	for _, r := range resourcesOf(groups["crm"]) {
		_, err := s.sim.Write(ctx, r, 2)
		require.NoError(t, err)
	}
	require.NoError(t, s.sim.SetLag(ctx, "a-block", time.Hour))
	_, err = s.sim.Write(ctx, "crm-db-data", 6)
	require.NoError(t, err)
	_, err = s.sim.Write(ctx, "crm-app-root", 1)
	require.NoError(t, err)
	require.NoError(t, s.sim.SetSiteDown(ctx, "site-a", true))
	started, err := s.api.StartRun(ctx, apiclient.StartRunRequest{Kind: "failover", Group: "crm", Mode: ferry.ModeUnplanned, RequestedBy: "e2e"})
	require.NoError(t, err)
	require.Contains(t, started.TemporalUIURL, "/workflows/ferry-group-crm/"+started.ID)
	unplanned := s.waitEnded(ctx, started.ID)
	require.Equal(t, ferry.RunCompleted, unplanned.State, unplanned.Message)
	var truth int64
	for _, r := range resourcesOf(groups["crm"]) {
		info, err := s.sim.ResourceInfo(ctx, r)
		require.NoError(t, err)
		truth += info.LostWrites
	}
	require.EqualValues(t, 7, truth)
	require.NotNil(t, unplanned.WritesLost)
	require.Equal(t, truth, *unplanned.WritesLost, "the run reports exactly the writes the simulator lost")

	// Every side effect exactly once (invariant 3).
	ledger, err := s.sim.Ledger(ctx)
	require.NoError(t, err)
	applied := map[string]int{}
	for _, l := range ledger {
		if l.Outcome == sim.OutcomeApplied {
			applied[l.Key]++
		}
	}
	require.NotEmpty(t, applied)
	for k, n := range applied {
		require.Equal(t, 1, n, "side effect %s applied %d times", k, n)
	}
	for _, id := range []string{planned.ID, unplanned.ID} {
		var seen bool
		for k := range applied {
			seen = seen || strings.HasPrefix(k, id+"/")
		}
		require.True(t, seen, "no side effect carries run %s's key", id)
	}

	// The run records are in PostgreSQL (invariant 6).
	st, err := store.Open(ctx, s.dbURL)
	require.NoError(t, err)
	defer st.Close()
	for _, want := range []ferry.Run{planned, unplanned} {
		rec, err := st.GetRun(ctx, want.ID)
		require.NoError(t, err)
		require.Equal(t, ferry.RunCompleted, rec.State)
		require.Equal(t, *want.WritesLost, *rec.WritesLost)
		require.NotNil(t, rec.RTOSeconds)
		require.NotNil(t, rec.Ended)
		require.Len(t, rec.Steps, len(want.Steps))
	}
	g, err := st.GetGroup(ctx, "crm")
	require.NoError(t, err)
	require.Equal(t, "site-b", g.ActiveSite)

	// The Markdown report names the run's outcome.
	md, err := s.api.Report(ctx, unplanned.ID, true)
	require.NoError(t, err)
	require.Contains(t, string(md), "unplanned")
	require.Contains(t, string(md), fmt.Sprint(truth))
}

func TestSecondRunOfAGroupIsRefusedWith409(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.applyDemo()

	// crm waits for approval, so its first run holds the group.
	first, err := s.api.StartRun(ctx, apiclient.StartRunRequest{Kind: "failover", Group: "crm", Mode: ferry.ModePlanned})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := s.api.GetRun(ctx, first.ID)
		return err == nil && r.State == ferry.RunWaitingApproval
	}, time.Minute, 100*time.Millisecond)
	// A dry run says what the start would meet.
	d, err := s.api.DryRun(ctx, apiclient.StartRunRequest{Kind: "failover", Group: "crm", Mode: ferry.ModeUnplanned})
	require.NoError(t, err)
	require.False(t, d.Ready)
	var busy *apiclient.Precondition
	for i, p := range d.Preconditions {
		if p.Name == "no other run of group crm" {
			busy = &d.Preconditions[i]
		}
	}
	require.NotNil(t, busy, "%+v", d.Preconditions)
	require.False(t, busy.Passed)
	require.Contains(t, busy.Detail, first.ID)

	// Lists filter on the live state, not the stored one.
	waiting, err := s.api.ListRuns(ctx, apiclient.RunFilter{State: ferry.RunWaitingApproval})
	require.NoError(t, err)
	require.Len(t, waiting.Items, 1)
	require.Equal(t, first.ID, waiting.Items[0].ID)
	running, err := s.api.ListRuns(ctx, apiclient.RunFilter{State: ferry.RunRunning})
	require.NoError(t, err)
	require.Empty(t, running.Items)

	_, err = s.api.StartRun(ctx, apiclient.StartRunRequest{Kind: "failover", Group: "crm", Mode: ferry.ModeUnplanned})
	var pe *apiclient.ProblemError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, http.StatusConflict, pe.Status)
	require.Equal(t, first.ID, pe.RunID)
	require.Contains(t, pe.Detail, first.ID)

	// Approved from the CLI, it completes; then the group is free again.
	out, code := s.cli("approve", first.ID)
	require.Equal(t, 0, code, out)
	r := s.waitEnded(ctx, first.ID)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "site-b", r.Site)
}

func TestDryRunPlansChecksAndEstimatesWithoutStartingAnything(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.applyDemo()

	dry := func(mode string) map[string]any {
		t.Helper()
		body := fmt.Sprintf(`{"kind":"failover","group":"shop","mode":%q,"dry_run":true}`, mode)
		req, err := http.NewRequest(http.MethodPost, s.apiURL+"/v1/runs", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", m)
		return m
	}
	m := dry(ferry.ModePlanned)
	require.Equal(t, true, m["dry_run"])
	require.Equal(t, true, m["ready"])
	var g ferry.Group
	for _, dg := range demo.Inventory().Groups {
		if dg.Name == "shop" {
			g = dg
		}
	}
	var steps []string
	for _, st := range m["steps"].([]any) {
		steps = append(steps, st.(string))
	}
	require.Equal(t, workflows.FailoverSteps(g, ferry.ModePlanned), steps)
	touches := fmt.Sprint(m["touches"])
	require.Contains(t, touches, "promote on backend b-block")
	require.Contains(t, touches, "b-volume-1, b-volume-2, b-volume-3")
	require.Contains(t, touches, "DNS A shop.demo.example: 10.1.0.10 -> 10.2.0.10")
	for _, c := range m["preconditions"].([]any) {
		require.Equal(t, true, c.(map[string]any)["passed"], "%v", c)
	}
	require.Nil(t, m["rto_estimate_seconds"], "no run is recorded yet")
	out, code := s.cli("failover", "shop", "--dry-run")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "Dry run of failover: nothing was started.")
	require.Contains(t, out, "[ok  ] target backend b-block reachable")

	// Nothing was started or changed.
	page, err := s.api.ListRuns(ctx, apiclient.RunFilter{})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	ledger, err := s.sim.Ledger(ctx)
	require.NoError(t, err)
	for _, l := range ledger {
		require.NotEqual(t, sim.OutcomeApplied, l.Outcome, "a dry run changed %s", l.Key)
	}

	// With the primary site down a planned failover is not ready, and says
	// why; an unplanned one is.
	require.NoError(t, s.sim.SetSiteDown(ctx, "site-a", true))
	m = dry(ferry.ModePlanned)
	require.Equal(t, false, m["ready"])
	require.Contains(t, fmt.Sprint(m["preconditions"]), "start an unplanned failover instead")
	m = dry(ferry.ModeUnplanned)
	require.Equal(t, true, m["ready"], "%v", m["preconditions"])
	require.NoError(t, s.sim.SetSiteDown(ctx, "site-a", false))

	// After a completed run the estimate comes from its recorded timings.
	out, code = s.cli("failover", "shop", "--yes")
	require.Equal(t, 0, code, out)
	page, err = s.api.ListRuns(ctx, apiclient.RunFilter{Group: "shop"})
	require.NoError(t, err)
	done := s.waitEnded(ctx, page.Items[0].ID)
	out, code = s.cli("failover", "shop", "--yes", "--target", "site-a") // home again
	require.Equal(t, 0, code, out)
	m = dry(ferry.ModePlanned)
	require.NotNil(t, m["rto_estimate_seconds"])
	require.Greater(t, m["rto_estimate_seconds"].(float64), 0.0)
	require.Less(t, m["rto_estimate_seconds"].(float64), *done.RTOSeconds*3)
	require.Contains(t, m["rto_basis"], "completed failover runs of group shop")
}

func TestDryRunOfEveryKindStartsNothing(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.applyDemo()

	for _, req := range []apiclient.StartRunRequest{
		{Kind: ferry.KindFailover, Group: "shop"},
		{Kind: ferry.KindProtect, Group: "shop"},
		{Kind: ferry.KindReprotect, Group: "shop"},
		{Kind: ferry.KindSuspend, Group: "shop"},
		{Kind: ferry.KindUnprotect, Group: "crm"},
		{Kind: ferry.KindDrill, Group: "shop"},
		{Kind: ferry.KindBackendFailover, Backend: "a-block"},
		{Kind: ferry.KindSharePromote, Share: "shop-media"},
		{Kind: ferry.KindEvacuate, Site: "site-a"},
	} {
		t.Run(req.Kind, func(t *testing.T) {
			d, err := s.api.DryRun(ctx, req)
			require.NoError(t, err)
			require.True(t, d.DryRun)
			require.Equal(t, req.Kind, d.Kind)
			require.NotEmpty(t, d.Steps)
			require.NotEmpty(t, d.Preconditions)
			require.True(t, d.Ready, "%+v", d.Preconditions)
			if req.Kind != ferry.KindSuspend && req.Kind != ferry.KindProtect && req.Kind != ferry.KindReprotect && req.Kind != ferry.KindUnprotect {
				require.NotEmpty(t, d.Touches)
			}
		})
	}
	// A dry run that cannot pass says why.
	d, err := s.api.DryRun(ctx, apiclient.StartRunRequest{Kind: ferry.KindBackendFailover, Backend: "a-block", Target: "default"})
	require.NoError(t, err)
	require.False(t, d.Ready)
	require.NotEmpty(t, d.Preconditions[0].Detail)

	page, err := s.api.ListRuns(ctx, apiclient.RunFilter{})
	require.NoError(t, err)
	require.Empty(t, page.Items, "a dry run records no run")
	ledger, err := s.sim.Ledger(ctx)
	require.NoError(t, err)
	for _, l := range ledger {
		require.NotEqual(t, sim.OutcomeApplied, l.Outcome, "a dry run changed %s", l.Key)
	}
}

// TestEveryKindFromTheCLI runs the whole catalog on the demo through the
// real binary, the way an operator would, each run to completion.
func TestEveryKindFromTheCLI(t *testing.T) {
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s.applyDemo()

	steps := [][]string{
		{"drill", "shop"},
		{"replication", "suspend", "shop", "--yes"},
		{"replication", "resume", "shop"},
		{"unprotect", "shop", "--yes"},
		{"protect", "shop", "--yes"},
		{"share-promote", "shop-media", "--yes"},
		{"share-promote", "shop-media", "--target", "site-a", "--yes"},
		{"failover", "shop", "--yes"},
		{"failback", "shop", "--yes"},
		{"backend-failover", "a-files", "--yes"},
		{"backend-failover", "a-files", "--target", "default", "--yes"},
		{"evacuate", "site-a", "--yes", "--skip-approval"},
		{"reprotect", "shop", "--yes"},
		{"reprotect", "crm", "--yes"},
	}
	for _, args := range steps {
		out, code := s.cli(args...)
		require.Equal(t, 0, code, "ferry %s:\n%s", strings.Join(args, " "), out)
		require.Contains(t, out, "completed", "ferry %s:\n%s", strings.Join(args, " "), out)
	}
	// A weekly drill, listed, then removed.
	out, code := s.cli("drill-schedule", "shop", "0 3 * * 1", "--hold", "10m")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, `drill schedule of group shop created: "0 3 * * 1", next drill`)
	out, code = s.cli("schedules")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "shop")
	require.Contains(t, out, "0 3 * * 1")
	out, code = s.cli("drill-schedule", "shop", "not a cron")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "cron")
	out, code = s.cli("drill-schedule", "shop", "--delete")
	require.Equal(t, 0, code, out)
	out, code = s.cli("schedules")
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "0 3 * * 1")

	// Every kind left a completed record.
	page, err := s.api.ListRuns(ctx, apiclient.RunFilter{ListOptions: apiclient.ListOptions{Limit: 200}})
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, r := range page.Items {
		if r.State == ferry.RunCompleted {
			kinds[r.Kind] = true
		}
	}
	// The evacuation's report shows every group's outcome; the drill's its
	// checks and what it touched.
	for _, r := range page.Items {
		switch r.Kind {
		case ferry.KindEvacuate:
			md, err := s.api.Report(ctx, r.ID, true)
			require.NoError(t, err)
			require.Contains(t, string(md), "## Groups")
			require.Contains(t, string(md), "| shop | 20 | completed |")
		case ferry.KindDrill:
			md, err := s.api.Report(ctx, r.ID, true)
			require.NoError(t, err)
			require.Contains(t, string(md), "## Checks")
			require.Contains(t, string(md), "## Resources touched")
		}
	}
	for _, k := range []string{ferry.KindFailover, ferry.KindProtect, ferry.KindUnprotect, ferry.KindReprotect, ferry.KindFailback,
		ferry.KindDrill, ferry.KindEvacuate, ferry.KindBackendFailover, ferry.KindSharePromote, ferry.KindSuspend, ferry.KindResume} {
		require.True(t, kinds[k], "no completed %s run", k)
	}
	ledger, err := s.sim.Ledger(ctx)
	require.NoError(t, err)
	applied := map[string]int{}
	for _, l := range ledger {
		if l.Outcome == sim.OutcomeApplied {
			applied[l.Key]++
		}
	}
	for k, n := range applied {
		require.Equal(t, 1, n, "side effect %s applied %d times", k, n)
	}
}
