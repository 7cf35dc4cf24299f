package testsuite

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/workflows"
)

// The rows of the chaos table besides the kill -9 scenarios.
const (
	rowTemporal    = "Temporal dev server killed -9 and restarted mid-run"
	rowPostgres    = "PostgreSQL crashed and restarted mid-run"
	rowOldPrimary  = "old primary returns during/after an unplanned failover"
	rowUnreachable = "pause: target site unreachable, healed, retry"
	rowForever     = "pause: an operation fails forever, skip"
	rowNoAck       = "pause: a cluster member never acknowledges, retry"
	rowTwoWorkers  = "two workers on one task queue, one killed -9"
)

// TestChaos kills Ferry's processes and the servers it stands on at the
// worst moments and requires every run to end as it would have without
// the kill, every side effect applied once, nothing leaked and no write
// lost beyond what the run reported (docs/reliability.md, "Chaos").
//
// FERRY_CHAOS=full (make chaos) tries every kill point; the default short
// form (make test) a handful, and one of each other scenario.
// FERRY_CHAOS_SYSTEMS sets how many deployments run side by side (each
// waits out its killed worker's activity timeouts on its own);
// FERRY_CHAOS_ONLY a regular expression the jobs' names must match.
func TestChaos(t *testing.T) {
	full := os.Getenv("FERRY_CHAOS") == "full"
	mode, systems := "short form", 3
	if full {
		mode, systems = "full matrix (FERRY_CHAOS=full)", 4
	}
	if v := os.Getenv("FERRY_CHAOS_SYSTEMS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "FERRY_CHAOS_SYSTEMS")
		require.Positive(t, n, "FERRY_CHAOS_SYSTEMS")
		systems = n
	}
	scenarios := killScenarios()
	var rows []string
	for _, sc := range scenarios {
		rows = append(rows, sc.name)
	}
	tally := newChaosTally(append(rows, rowTemporal, rowPostgres, rowOldPrimary, rowUnreachable, rowForever, rowNoAck, rowTwoWorkers)...)
	refs := make([]*reference, len(scenarios))
	planned := &refs[0]

	// Phase one: a reference run of every scenario, and what needs none.
	first := []chaosJob{pauseUnreachableJob(tally), pauseForeverJob(tally), pauseNoAckJob(tally)}
	for i, sc := range scenarios {
		first = append(first, referenceJob(sc, &refs[i], tally))
	}
	// Phase two: the kill points the references show, and the restarts.
	second := func() []chaosJob {
		var jobs []chaosJob
		for i, sc := range scenarios {
			if refs[i] == nil {
				t.Errorf("%s: no reference run, so no kill points", sc.name)
				continue
			}
			all, err := sc.killPoints(refs[i])
			if err != nil {
				t.Error(err)
				continue
			}
			if !full {
				if all, err = sc.shortPoints(all); err != nil {
					t.Error(err)
					continue
				}
			}
			for _, kp := range all {
				jobs = append(jobs, killJob(kp, refs[i], tally))
			}
		}
		temporalAt := []pick{{activity: "BootTier", occurrence: 1, inside: true}}
		pgAt := []pick{{activity: "Verify", occurrence: 1}}
		primaryAt := []string{"Promote", ""}
		if full {
			temporalAt = []pick{{activity: "Precheck", occurrence: 1}, {activity: "Snapshot", occurrence: 1},
				{activity: "Promote", occurrence: 1, inside: true}, {activity: "BootTier", occurrence: 2, inside: true},
				{activity: "RecordRun", occurrence: 1}}
			pgAt = []pick{{activity: "Precheck", occurrence: 1}, {activity: "Promote", occurrence: 1},
				{activity: "BootTier", occurrence: 1}, {activity: "Verify", occurrence: 1}, {activity: "RecordRun", occurrence: 1}}
			primaryAt = []string{"Fence", "Promote", "BootTier", ""}
		}
		if *planned != nil {
			for _, p := range temporalAt {
				jobs = append(jobs, temporalRestartJob(p, *planned, tally))
			}
			for _, p := range pgAt {
				jobs = append(jobs, postgresRestartJob(p, *planned, tally))
			}
		}
		for _, at := range primaryAt {
			jobs = append(jobs, oldPrimaryJob(at, tally))
		}
		return append(jobs, twoWorkersJob(tally))
	}
	// FERRY_CHAOS_ONLY narrows the jobs to those whose name matches a
	// regular expression (reference runs always run): to chase one kill
	// point.
	if only := os.Getenv("FERRY_CHAOS_ONLY"); only != "" {
		re, err := regexp.Compile(only)
		require.NoError(t, err, "FERRY_CHAOS_ONLY")
		keep := func(jobs []chaosJob) []chaosJob {
			var out []chaosJob
			for _, j := range jobs {
				if strings.HasPrefix(j.name, "reference/") || re.MatchString(j.name) {
					out = append(out, j)
				}
			}
			return out
		}
		first = keep(first)
		all := second
		second = func() []chaosJob { return keep(all()) }
	}
	q := newJobQueue(first, second)

	bin := buildFerry(t)
	// The systems run side by side from goroutines rather than as
	// t.Parallel subtests, which -parallel (GOMAXPROCS) would cap: they
	// spend most of their time waiting, not computing.
	var wg sync.WaitGroup
	for i := 1; i <= systems; i++ {
		name := fmt.Sprintf("system-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, func(t *testing.T) {
				cs := startChaosSystem(t, name, bin)
				for {
					job, ok := q.next()
					if !ok {
						return
					}
					t.Run(job.name, func(t *testing.T) {
						defer q.done()
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
						defer cancel()
						cs.bind(t)
						job.run(t, ctx, cs)
					})
				}
			})
		}()
	}
	wg.Wait()

	// On stdout, where `make chaos` (go test -v) shows it.
	fmt.Println(tally.table(mode))
	total, finished := q.counts()
	require.Equal(t, total, finished, "jobs not run (no chaos system came up?)")
	tot := tally.total()
	require.Positive(t, tot.KillPoints, "no kill point was tried")
	require.Equal(t, tot.Runs, tot.Completed, "runs that did not end as they would have without the kill")
	require.Zero(t, tot.Duplicates, "duplicate side effects")
	require.Zero(t, tot.Leaked, "leaked resources")
	require.Zero(t, tot.LostWrites, "writes lost beyond the reported RPO")
}

// plannedShop is the run most restart scenarios cut: a planned failover of
// shop, and how it must end.
func plannedShop() *killScenario { return killScenarios()[0] }

// restartJob runs the planned failover of shop and, at the point, does
// cut (kill and restart a server the run stands on).
func restartJob(row, what string, at pick, ref *reference, tally *chaosTally, cut func(t *testing.T, cs *chaosSystem)) chaosJob {
	label := fmt.Sprintf("%s at %s #%d", what, at.activity, at.occurrence)
	if at.inside {
		label += " (inside)"
	}
	return chaosJob{name: label, run: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
		sc := plannedShop()
		cs.home(t, ctx)
		e := sc.expect
		e.ref = ref
		b := cs.baseline(t, ctx, e.resources)
		o := tally.track(t, row, 1)
		if at.inside && at.activity == "Promote" {
			_, err := cs.sim.InjectFault(ctx, *slowPromote(siteB, 2))
			require.NoError(t, err)
		}
		resp := cs.start(t, ctx, sc.req)
		_, err := cs.awaitActivity(ctx, resp.WorkflowID, resp.ID, at.activity, at.occurrence)
		require.NoError(t, err)
		if at.inside {
			time.Sleep(400 * time.Millisecond)
		}
		cut(t, cs)
		cutAt := time.Now()
		end := cs.waitEnd(t, ctx, resp.ID)
		cs.verifyRun(t, ctx, end, b, e, o)
		tally.point("%s: %s; run %s %s %s after it", row, label, end.ID, end.State, time.Since(cutAt).Round(time.Second))
	}}
}

func temporalRestartJob(at pick, ref *reference, tally *chaosTally) chaosJob {
	return restartJob(rowTemporal, "Temporal killed -9", at, ref, tally, func(t *testing.T, cs *chaosSystem) {
		require.NoError(t, cs.temporal.restart(2*time.Second))
	})
}

func postgresRestartJob(at pick, ref *reference, tally *chaosTally) chaosJob {
	return restartJob(rowPostgres, "PostgreSQL crashed (stop -m immediate)", at, ref, tally, func(t *testing.T, cs *chaosSystem) {
		require.NoError(t, cs.pg.stop("immediate"))
		time.Sleep(5 * time.Second)
		require.NoError(t, cs.pg.start())
	})
}

// splitBrainWatch reads the simulator's state every few milliseconds and
// records every snapshot in which one resource had two writable replicas
// (invariant 1), or a writable replica at a site that must take no writes
// (the old primary, from its promote on until reprotect). State is read
// under the simulator's one lock, so each snapshot is consistent.
type splitBrainWatch struct {
	stop      chan struct{}
	done      chan struct{}
	snapshots int
	splits    []string
	mu        sync.Mutex
	forbidden string
}

// forbid makes any writable replica at site a violation ("" lifts it).
func (w *splitBrainWatch) forbid(site string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forbidden = site
}

func watchSplitBrain(ctx context.Context, c *sim.Client, resources []string) *splitBrainWatch {
	w := &splitBrainWatch{stop: make(chan struct{}), done: make(chan struct{})}
	watched := map[string]bool{}
	for _, r := range resources {
		watched[r] = true
	}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			st, err := c.State(ctx)
			if err != nil {
				continue
			}
			w.snapshots++
			w.mu.Lock()
			forbidden := w.forbidden
			w.mu.Unlock()
			for _, r := range st.Resources {
				if !watched[r.Name] {
					continue
				}
				var writable []string
				for _, rep := range r.Replicas {
					if rep.Writable {
						writable = append(writable, rep.Backend)
						if rep.Site == forbidden {
							w.splits = append(w.splits, r.Name+" writable at the old primary "+rep.Site+" before reprotect")
						}
					}
				}
				if len(writable) > 1 {
					w.splits = append(w.splits, r.Name+" writable on "+strings.Join(writable, " and "))
				}
			}
		}
	}()
	return w
}

func (w *splitBrainWatch) end() (int, []string) {
	close(w.stop)
	<-w.done
	return w.snapshots, w.splits
}

// requireRefused requires a write at site to every resource to be refused
// for good (fenced or read-only), not merely unreachable.
func requireRefused(t *testing.T, ctx context.Context, c *sim.Client, site string, resources []string) string {
	t.Helper()
	var why string
	for _, r := range resources {
		_, err := c.WriteAt(ctx, r, site, 1)
		require.Error(t, err, "the old primary at %s accepted a write to %s", site, r)
		require.Regexp(t, "fenced|read-only", err.Error(), "write to %s at %s", r, site)
		why = err.Error()
	}
	return why
}

// oldPrimaryJob is an unplanned failover of shop with site-a down; site-a
// comes back when the run schedules its first `at` activity ("" once the
// run has ended). Throughout, no resource may have two writable replicas;
// once promoted, the old primary must refuse writes until reprotect (the
// failback), and the writes lost on the way must be the ones the run
// reports.
func oldPrimaryJob(at string, tally *chaosTally) chaosJob {
	when := "after the run"
	if at != "" {
		when = "when " + at + " is scheduled"
	}
	return chaosJob{name: "site-a returns " + when, run: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
		sc := killScenarios()[1]
		cs.home(t, ctx)
		shop := demoResources("shop")
		watch := watchSplitBrain(ctx, cs.sim, shop)
		defer func() {
			if watch != nil {
				watch.end()
			}
		}()
		sc.prepare(t, ctx, cs)
		b := cs.baseline(t, ctx, shop)
		o := tally.track(t, rowOldPrimary, 0)
		resp := cs.start(t, ctx, sc.req)
		if at != "" {
			_, err := cs.awaitActivity(ctx, resp.WorkflowID, resp.ID, at, 1)
			require.NoError(t, err)
			require.NoError(t, cs.sim.SetSiteDown(ctx, siteA, false))
		}
		// From the promote on, the old primary must take no write until
		// reprotect, whatever it held and whenever it came back.
		p, err := cs.awaitActivity(ctx, resp.WorkflowID, resp.ID, "Promote", 1)
		require.NoError(t, err)
		require.NoError(t, cs.awaitCompleted(ctx, resp.WorkflowID, resp.ID, p.EventID))
		watch.forbid(siteA)
		if at != "" {
			requireRefused(t, ctx, cs.sim, siteA, shop)
		}
		end := cs.waitEnd(t, ctx, resp.ID)
		if at == "" {
			require.NoError(t, cs.sim.SetSiteDown(ctx, siteA, false))
		}
		time.Sleep(time.Second) // the workload runs at both sites meanwhile
		refused := requireRefused(t, ctx, cs.sim, siteA, shop)
		st, err := cs.sim.State(ctx)
		require.NoError(t, err)
		for _, be := range st.Backends {
			if be.Name == "a-block" || be.Name == "a-files" {
				require.True(t, be.Fenced, "%s not fenced after the unplanned failover", be.Name)
			}
		}
		cs.verifyRun(t, ctx, end, b, sc.expect, o)

		// Reprotect (here: the failback, which reprotects first) is what
		// makes site-a take writes again, once the group runs there.
		fb := cs.baseline(t, ctx, shop)
		watch.forbid("")
		ob := tally.track(t, rowOldPrimary, 0)
		back := cs.runUncut(t, ctx, apiclient.StartRunRequest{Kind: ferry.KindFailback, Group: "shop"})
		cs.verifyRun(t, ctx, back, fb, killScenarios()[2].expect, ob)
		for _, r := range shop {
			_, err := cs.sim.WriteAt(ctx, r, siteA, 1)
			require.NoError(t, err, "after the failback %s takes writes at home again", r)
		}
		snaps, splits := watch.end()
		watch = nil
		require.Empty(t, splits, "two writable replicas of one resource")
		require.Positive(t, snaps)
		tally.note("%s: site-a returned %s; %d state snapshots, at most one writable replica per resource; run reported %d writes lost (the simulator agrees); a write to the old primary was refused: %q",
			rowOldPrimary, when, snaps, *end.WritesLost, refused)
	}}
}

// pausedStep is the failed step a paused run waits on.
func pausedStep(t *testing.T, r ferry.Run) ferry.Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.State == ferry.StepFailed {
			return s
		}
	}
	t.Fatalf("run %s is %s with no failed step: %+v", r.ID, r.State, r.Steps)
	return ferry.Step{}
}

// requireActionable requires the message of a paused run, in the API's
// record and the progress query alike, to name the failed step, the reason
// and what the operator can do.
func (cs *chaosSystem) requireActionable(t *testing.T, ctx context.Context, r ferry.Run, reason ...string) ferry.Step {
	t.Helper()
	st := pausedStep(t, r)
	require.Contains(t, r.Message, "step "+st.Name+" failed")
	require.Contains(t, r.Message, "retry, skip or abort")
	for _, want := range reason {
		require.Contains(t, r.Message, want)
	}
	var q ferry.Run
	retryFor(t, time.Minute, func() error {
		v, err := cs.tc.QueryWorkflow(ctx, r.WorkflowID, r.ID, workflows.QueryProgress)
		if err != nil {
			return err
		}
		return v.Get(&q)
	}, "progress query of %s", r.ID)
	require.Equal(t, r.Message, q.Message, "the API shows the progress query's message")
	return st
}

// pauseJob runs a planned failover of shop that meets a failure after its
// point of no return: the run must pause with a message naming the step
// and the reason, then the operator's decision must complete it.
func pauseJob(row, name string, tally *chaosTally,
	breakIt func(t *testing.T, ctx context.Context, cs *chaosSystem, resp apiclient.StartRunResponse),
	reason []string, heal func(t *testing.T, ctx context.Context, cs *chaosSystem), decision string,
	after func(t *testing.T, ctx context.Context, cs *chaosSystem, end ferry.Run, failed ferry.Step)) chaosJob {
	return chaosJob{name: name, run: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
		sc := plannedShop()
		cs.home(t, ctx)
		b := cs.baseline(t, ctx, sc.expect.resources)
		o := tally.track(t, row, 0)
		resp := cs.start(t, ctx, sc.req)
		breakIt(t, ctx, cs, resp)
		r := cs.waitState(t, ctx, resp.ID, ferry.RunPaused)
		failed := cs.requireActionable(t, ctx, r, reason...)
		heal(t, ctx, cs)
		cs.steer(t, ctx, resp.ID, decision)
		end := cs.waitEnd(t, ctx, resp.ID)
		cs.verifyRun(t, ctx, end, b, sc.expect, o)
		after(t, ctx, cs, end, failed)
		tally.note("%s: paused with %q; %s completed it", row, r.Message, decision)
	}}
}

func pauseUnreachableJob(tally *chaosTally) chaosJob {
	return pauseJob(rowUnreachable, "pause: site-b unreachable while booting", tally,
		func(t *testing.T, ctx context.Context, cs *chaosSystem, resp apiclient.StartRunResponse) {
			// The first boot call is slowed, and the site goes down while
			// it waits: the boot never happened, so the retry boots once.
			_, err := cs.sim.InjectFault(ctx, sim.Fault{Op: "compute.boot", Times: 1, Latency: 3 * time.Second})
			require.NoError(t, err)
			_, err = cs.awaitActivity(ctx, resp.WorkflowID, resp.ID, "BootTier", 1)
			require.NoError(t, err)
			time.Sleep(time.Second)
			require.NoError(t, cs.sim.SetSiteDown(ctx, siteB, true))
		},
		[]string{siteB},
		func(t *testing.T, ctx context.Context, cs *chaosSystem) {
			require.NoError(t, cs.sim.SetSiteDown(ctx, siteB, false))
		}, workflows.UpdateRetry,
		requireRetried)
}

// requireRetried requires the failed step to have completed on the
// operator's retry.
func requireRetried(t *testing.T, _ context.Context, _ *chaosSystem, end ferry.Run, failed ferry.Step) {
	t.Helper()
	for _, s := range end.Steps {
		if s.Name == failed.Name {
			require.Equal(t, ferry.StepCompleted, s.State, "step %s after the retry", s.Name)
			require.Greater(t, s.Attempts, 1, "step %s was not retried", s.Name)
		}
	}
}

func pauseForeverJob(tally *chaosTally) chaosJob {
	return pauseJob(rowForever, "pause: map_networks fails forever, skipped", tally,
		func(t *testing.T, ctx context.Context, cs *chaosSystem, resp apiclient.StartRunResponse) {
			_, err := cs.sim.InjectFault(ctx, sim.Fault{Op: "network.map_networks"})
			require.NoError(t, err)
		},
		[]string{"map networks", "injected fault"},
		func(t *testing.T, ctx context.Context, cs *chaosSystem) {}, workflows.UpdateSkip,
		func(t *testing.T, ctx context.Context, cs *chaosSystem, end ferry.Run, failed ferry.Step) {
			require.Equal(t, workflows.StepNetwork, failed.Name)
			require.Contains(t, end.Flags, "skipped:"+workflows.StepNetwork)
			for _, s := range end.Steps {
				if s.Name == workflows.StepNetwork {
					require.Equal(t, ferry.StepSkipped, s.State)
					require.Contains(t, s.Note, "skipped by operator after: ")
				}
			}
			require.NoError(t, cs.sim.ClearFaults(ctx))
		})
}

func pauseNoAckJob(tally *chaosTally) chaosJob {
	return pauseJob(rowNoAck, "pause: b-volume-2 never acknowledges failover_completed, retried", tally,
		func(t *testing.T, ctx context.Context, cs *chaosSystem, resp apiclient.StartRunResponse) {
			_, err := cs.sim.InjectFault(ctx, sim.Fault{Op: "storage.failover_completed", Target: "b-volume-2", Kind: "permanent"})
			require.NoError(t, err)
		},
		[]string{"b-volume-2", "not acknowledged"},
		func(t *testing.T, ctx context.Context, cs *chaosSystem) { require.NoError(t, cs.sim.ClearFaults(ctx)) },
		workflows.UpdateRetry,
		func(t *testing.T, ctx context.Context, cs *chaosSystem, end ferry.Run, failed ferry.Step) {
			requireRetried(t, ctx, cs, end, failed)
			require.Equal(t, workflows.StepFailoverCompleted, failed.Name)
			// Each member was told once: on the retry, the ones that had
			// acknowledged were answered from the ledger.
			led, err := cs.sim.Ledger(ctx)
			require.NoError(t, err)
			applied, replayed := map[string]int{}, map[string]int{}
			for _, l := range led {
				if l.Op != "storage.failover_completed" || !strings.HasPrefix(l.Key, end.ID+"/") {
					continue
				}
				switch l.Outcome {
				case sim.OutcomeApplied:
					applied[l.Target]++
				case sim.OutcomeReplayed:
					replayed[l.Target]++
				}
			}
			for _, m := range []string{"b-block/b-volume-1", "b-block/b-volume-2", "b-block/b-volume-3", "b-files/b-share-1", "b-files/b-share-2"} {
				require.Equal(t, 1, applied[m], "failover_completed applied to %s", m)
				if m != "b-block/b-volume-2" {
					require.Positive(t, replayed[m], "the retry told %s again instead of replaying", m)
				}
			}
			st, err := cs.sim.State(ctx)
			require.NoError(t, err)
			for _, be := range st.Backends {
				if be.Name != "b-block" && be.Name != "b-files" {
					continue
				}
				for _, m := range be.Members {
					require.Equal(t, siteB, m.ActiveBackendID, "member %s of %s after the retry", m.Name, be.Name)
				}
			}
		})
}

// twoWorkersJob runs two failovers (shop and crm) on a system with two
// workers and kills one of them -9 inside the first boot of shop, never to
// come back while they run: the other worker must finish both.
func twoWorkersJob(tally *chaosTally) chaosJob {
	return chaosJob{name: "two workers, one killed", run: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
		cs.home(t, ctx)
		second := cs.addWorker(t)
		defer func() {
			second.stop()
			cs.workers = cs.workers[:1]
		}()
		shopSc := plannedShop()
		crmExpect := expectation{state: ferry.RunCompleted, resources: demoResources("crm"),
			sites: sitesOf(siteB, "crm"), groups: map[string]string{"crm": siteB}}
		bs := cs.baseline(t, ctx, shopSc.expect.resources)
		bc := cs.baseline(t, ctx, crmExpect.resources)
		so, co := tally.track(t, rowTwoWorkers, 1), tally.track(t, rowTwoWorkers, 0)
		shop := cs.start(t, ctx, shopSc.req)
		crm := cs.start(t, ctx, apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: "crm", Mode: ferry.ModePlanned,
			Options: apiclient.RunOptions{SkipApproval: true}})
		_, err := cs.awaitActivity(ctx, shop.WorkflowID, shop.ID, "BootTier", 1)
		require.NoError(t, err)
		time.Sleep(400 * time.Millisecond)
		cs.killWorker(0)
		killed := time.Now()
		var wg sync.WaitGroup
		ends := make([]ferry.Run, 2)
		for i, id := range []string{shop.ID, crm.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ends[i] = cs.waitEndQuiet(ctx, id)
			}()
		}
		wg.Wait()
		require.False(t, cs.workers[0].running(), "the killed worker came back")
		for _, r := range ends {
			require.NotEmpty(t, r.ID, "a run did not end; logs in %s", cs.logs)
		}
		cs.verifyRun(t, ctx, ends[0], bs, shopSc.expect, so)
		cs.verifyRun(t, ctx, ends[1], bc, crmExpect, co)
		tally.point("%s: worker-1 killed inside shop's first boot; shop %s and crm %s ended %s and %s within %s, on worker-2",
			rowTwoWorkers, shop.ID, crm.ID, ends[0].State, ends[1].State, time.Since(killed).Round(time.Second))
		cs.restartWorker(t, 0)
	}}
}

// waitEndQuiet waits for a run to end like waitEnd, from any goroutine:
// it returns a zero Run instead of failing the test.
func (cs *chaosSystem) waitEndQuiet(ctx context.Context, id string) ferry.Run {
	deadline := time.Now().Add(8 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r, err := cs.api.GetRun(ctx, id); err == nil && ferry.RunEnded(r.State) {
			return r
		}
		time.Sleep(250 * time.Millisecond)
	}
	return ferry.Run{}
}
