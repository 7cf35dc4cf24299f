package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// startDrill starts a drill under the group's lock id, as the API does, or
// under id when given (as a schedule does), on queue (default the env's).
func (e *env) startDrill(in workflows.DrillInput, id, queue string) client.WorkflowRun {
	e.t.Helper()
	if in.MaxAttempts == 0 {
		in.MaxAttempts = 2
	}
	if id == "" {
		id = workflows.GroupWorkflowID(in.Group)
	}
	if queue == "" {
		queue = e.tq
	}
	run, err := temporalClient.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.DrillWorkflowName, in)
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = temporalClient.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test ended")
	})
	return run
}

// waitStep waits until the run's step is in state want.
func (e *env) waitStep(run client.WorkflowRun, step, want string) ferry.Run {
	e.t.Helper()
	var last ferry.Run
	require.Eventually(e.t, func() bool {
		last = e.progress(run)
		for _, s := range last.Steps {
			if s.Name == step {
				return s.State == want
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "step %s never reached %s", step, want)
	return last
}

// waitBootStarted waits until a boot activity runs on a worker (it has
// heartbeated), not merely scheduled.
func (e *env) waitBootStarted(run client.WorkflowRun) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		d, err := temporalClient.DescribeWorkflowExecution(e.ctx, run.GetID(), run.GetRunID())
		require.NoError(e.t, err)
		for _, pa := range d.GetPendingActivities() {
			if pa.GetActivityType().GetName() == "DrillBoot" && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED && pa.GetHeartbeatDetails() != nil {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no boot is running")
}

// requireDrillTouchedOnlyItsOwn proves invariant 5 on the ledger: every
// change the drill applied created or removed a bubble, a clone or a
// server inside the bubble, at the DR site; nothing else.
func requireDrillTouchedOnlyItsOwn(t *testing.T, ledger []sim.LedgerEntry, runID string) {
	t.Helper()
	allowed := map[string][]string{
		"network.create_bubble":       {"site-b"},
		"network.destroy_bubble":      {"site-b"},
		"storage.test_failover_start": {"b-block", "b-files"},
		"storage.test_failover_stop":  {"b-block", "b-files"},
		"compute.boot":                {"site-b"},
	}
	n := 0
	for _, l := range ledger {
		if l.Outcome != sim.OutcomeApplied {
			continue
		}
		n++
		require.True(t, strings.HasPrefix(l.Key, runID+"/"), "change %s %s was not the drill's", l.Op, l.Key)
		targets, ok := allowed[l.Op]
		require.True(t, ok, "the drill applied %s on %s: not a bubble, clone or bubble server", l.Op, l.Target)
		require.Contains(t, targets, l.Target, "the drill applied %s on %s, outside the DR side", l.Op, l.Target)
	}
	require.NotZero(t, n, "the drill changed nothing")
}

func TestDrillCompletesInsideTheBubbleAndLeavesNothing(t *testing.T) {
	e := newEnv(t)
	g := demoGroup(t, "shop")
	for _, r := range groupResources(g) {
		_, err := e.sim.Write(e.ctx, r, 3)
		require.NoError(t, err)
	}
	before := e.state()
	run := e.startDrill(workflows.DrillInput{Group: "shop", RequestedBy: "tina"}, "", "")
	r := e.result(run)
	recordHistory(t, run, "drill-completed")

	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "site-b", r.Site)
	var got []string
	for _, s := range r.Steps {
		got = append(got, s.Name)
		require.Equal(t, ferry.StepCompleted, s.State, "step %s: %s", s.Name, s.Error)
	}
	require.Equal(t, workflows.DrillSteps(g, false), got)
	require.Equal(t, []ferry.CheckOutcome{{Name: "shop-home", Passed: true}}, r.Checks)
	require.NotNil(t, r.RTOSeconds)
	require.NotNil(t, r.RPOSeconds)
	require.Contains(t, stepOf(t, r, workflows.StepChecks).Note, "inside bubble")

	// Every resource it made is in the record: one bubble, a clone per
	// replica, the group's servers.
	var bubbles, clones, servers int
	for _, x := range r.Touched {
		switch {
		case strings.HasPrefix(x, "bubble:site-b/"):
			bubbles++
		case strings.HasPrefix(x, "clone:b-"):
			clones++
		case strings.HasPrefix(x, "server:site-b/"):
			servers++
		default:
			t.Fatalf("unexpected touched resource %q", x)
		}
	}
	require.Equal(t, 1, bubbles)
	require.Equal(t, len(groupResources(g)), clones)
	require.Equal(t, len(g.Servers()), servers)

	// Nothing is left, production is as it was, and only the drill's own
	// resources were ever touched (invariant 5).
	require.Equal(t, before, e.state())
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireDrillTouchedOnlyItsOwn(t, ledger, run.GetRunID())
	requireExactlyOnce(t, ledger)

	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunCompleted, rec.State)
	require.Equal(t, ferry.KindDrill, rec.Kind)
	require.Equal(t, "tina", rec.RequestedBy)
	require.Len(t, rec.Checks, 1)
	require.Len(t, rec.Touched, len(r.Touched))
	grp, err := e.st.GetGroup(e.ctx, "shop")
	require.NoError(t, err)
	require.Empty(t, grp.ActiveSite, "a drill moves nothing")
}

func TestDrillHoldReleasedByResumeWhileReplicationKeepsRunning(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.Write(e.ctx, "shop-db-data", 4)
	require.NoError(t, err)
	before := e.state()
	statusBefore, err := e.sim.ReplicationStatus(e.ctx, []string{"shop-db-data"})
	require.NoError(t, err)

	run := e.startDrill(workflows.DrillInput{Group: "shop", HoldSeconds: 600}, "", "")
	p := e.waitState(run, ferry.RunPaused)
	require.Equal(t, ferry.StepRunning, stepOf(t, p, workflows.StepHold).State)
	require.Contains(t, p.Message, "holding bubble")
	require.Len(t, p.Checks, 1)
	require.True(t, p.Checks[0].Passed)

	// The bubble is up: clones and the group's servers at site-b, while
	// production runs on at site-a untouched.
	during := e.state()
	require.Len(t, during.Bubbles, 1)
	require.Len(t, during.Clones, len(groupResources(demoGroup(t, "shop"))))
	var cloneSeq int64 = -1
	for _, c := range during.Clones {
		if c.Resource == "shop-db-data" {
			cloneSeq = c.Seq
		}
	}
	require.EqualValues(t, 4, cloneSeq)
	h, err := e.sim.Health(e.ctx, "site-a", []string{"shop-db-1", "shop-web-1"})
	require.NoError(t, err)
	for _, s := range h {
		require.True(t, s.Healthy, "production server %s", s.Name)
	}

	// Replication is not stopped by the drill: the DR replica takes new
	// writes with the lag it had before, the clone keeps its point.
	_, err = e.sim.Write(e.ctx, "shop-db-data", 5)
	require.NoError(t, err)
	info, err := e.sim.ResourceInfo(e.ctx, "shop-db-data")
	require.NoError(t, err)
	for _, rep := range info.Replicas {
		require.EqualValues(t, 9, rep.Seq, "replica at %s", rep.Site)
	}
	statusDuring, err := e.sim.ReplicationStatus(e.ctx, []string{"shop-db-data"})
	require.NoError(t, err)
	for i := range statusBefore {
		require.Equal(t, statusBefore[i].State, statusDuring[i].State)
		require.Equal(t, statusBefore[i].Lag, statusDuring[i].Lag)
	}

	// The hold is paused-like: pause is refused, retry has nothing to do,
	// resume releases it.
	require.ErrorContains(t, e.steer(run, workflows.UpdatePause, "uma"), "already paused")
	require.ErrorContains(t, e.steer(run, workflows.UpdateRetry, "uma"), "no failed step")
	require.NoError(t, e.steer(run, workflows.UpdateResume, "uma"))
	r := e.result(run)
	recordHistory(t, run, "drill-hold-resume")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "released by resume", stepOf(t, r, workflows.StepHold).Note)
	require.Equal(t, "resume", r.Events[len(r.Events)-1].Action)
	require.Equal(t, before, e.state())
}

func TestDrillHoldReleasedByTimeLimit(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	// Long enough that a loaded machine's polling still sees the hold.
	run := e.startDrill(workflows.DrillInput{Group: "crm", HoldSeconds: 6}, "", "")
	p := e.waitState(run, ferry.RunPaused)
	require.Equal(t, ferry.StepRunning, stepOf(t, p, workflows.StepHold).State)
	r := e.result(run)
	recordHistory(t, run, "drill-hold-timeout")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	hold := stepOf(t, r, workflows.StepHold)
	require.Contains(t, hold.Note, "time limit")
	require.GreaterOrEqual(t, hold.Ended.Sub(*hold.Started), 6*time.Second)
	require.Equal(t, before, e.state())
}

func TestDrillThatFailsMidwayLeavesNothing(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "compute.boot", Target: "shop-app-1", Kind: drivers.Permanent})
	require.NoError(t, err)
	run := e.startDrill(workflows.DrillInput{Group: "shop"}, "", "")
	r := e.result(run)
	recordHistory(t, run, "drill-failed")
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, "boot")
	require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.BootStep("database")).State)
	require.Equal(t, ferry.StepFailed, stepOf(t, r, workflows.BootStep("application")).State)
	require.Equal(t, ferry.StepPending, stepOf(t, r, workflows.StepChecks).State)
	require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.StepCleanup).State)
	require.Equal(t, before, e.state(), "a failed drill leaves nothing behind")
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireDrillTouchedOnlyItsOwn(t, ledger, run.GetRunID())
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunFailed, rec.State)
}

func TestDrillWithFailingCheckReportsEveryCheck(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	g, err := e.st.GetGroup(e.ctx, "shop")
	require.NoError(t, err)
	g.Checks = append(g.Checks, ferry.Check{Name: "shop-dns", Type: ferry.CheckDNS, Target: "shop.demo.example", Expect: "10.9.9.9"})
	_, err = e.st.PutGroup(e.ctx, g)
	require.NoError(t, err)
	run := e.startDrill(workflows.DrillInput{Group: "shop"}, "", "")
	r := e.result(run)
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, "shop-dns")
	require.Len(t, r.Checks, 2)
	require.True(t, r.Checks[0].Passed)
	require.False(t, r.Checks[1].Passed)
	require.Contains(t, r.Checks[1].Detail, "10.9.9.9")
	require.Nil(t, r.RTOSeconds, "an unverified bubble has no RTO")
	require.Equal(t, before, e.state())
}

func TestDrillAbortedMidBootLeavesNothing(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	// The web tier's boot hangs, so the abort lands while it runs.
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "compute.boot", Target: "shop-web-1", Latency: time.Minute})
	require.NoError(t, err)
	run := e.startDrill(workflows.DrillInput{Group: "shop"}, "", "")
	e.waitStep(run, workflows.BootStep("web"), ferry.StepRunning)
	e.waitBootStarted(run)
	require.NoError(t, e.steer(run, workflows.UpdateAbort, "vera"))
	r := e.result(run)
	recordHistory(t, run, "drill-aborted")
	require.Equal(t, ferry.RunAborted, r.State)
	require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.StepCleanup).State)
	require.Equal(t, before, e.state(), "an aborted drill leaves nothing behind")
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireDrillTouchedOnlyItsOwn(t, ledger, run.GetRunID())
	// The cut-off boot ended before the bubble was torn down, so no server
	// can land in a bubble that no longer exists.
	var bootEnded, destroyed int64
	for _, l := range ledger {
		switch {
		case l.Op == "compute.boot" && strings.Contains(l.Key, workflows.BootStep("web")):
			require.Equal(t, sim.OutcomeFailed, l.Outcome)
			bootEnded = l.Seq
		case l.Op == "network.destroy_bubble":
			destroyed = l.Seq
		}
	}
	require.NotZero(t, bootEnded, "the web tier's boot never ended")
	require.NotZero(t, destroyed)
	require.Less(t, bootEnded, destroyed, "the bubble was destroyed while a boot into it still ran")
}

func TestDrillCancelledThroughTemporalLeavesNothing(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "compute.boot", Target: "crm-app-1", Latency: time.Minute})
	require.NoError(t, err)
	run := e.startDrill(workflows.DrillInput{Group: "crm"}, "", "")
	e.waitStep(run, workflows.BootStep("application"), ferry.StepRunning)
	e.waitBootStarted(run)
	require.NoError(t, temporalClient.CancelWorkflow(e.ctx, run.GetID(), run.GetRunID()))
	r := e.result(run)
	recordHistory(t, run, "drill-cancelled")
	require.Equal(t, ferry.RunAborted, r.State)
	require.Equal(t, "cancel", r.Events[len(r.Events)-1].Action)
	require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.StepCleanup).State)
	require.Equal(t, before, e.state(), "a cancelled drill leaves nothing behind")
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunAborted, rec.State)
}

func TestDrillAbortedDuringHoldCleansUp(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	run := e.startDrill(workflows.DrillInput{Group: "shop", HoldSeconds: 600}, "", "")
	e.waitState(run, ferry.RunPaused)
	require.NoError(t, e.steer(run, workflows.UpdateAbort, "walt"))
	r := e.result(run)
	require.Equal(t, ferry.RunAborted, r.State)
	require.Equal(t, "released by abort", stepOf(t, r, workflows.StepHold).Note)
	require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.StepCleanup).State)
	require.True(t, r.Checks[0].Passed, "the report keeps the checks run before the abort")
	require.Equal(t, before, e.state())
}

func TestDrillSurvivesAWorkerLostMidBoot(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	queue := e.tq + "-crash"
	acts := &activities.Activities{Drivers: e.sim.Set(), Store: e.st}
	w1 := worker.New(temporalClient, queue, acts, worker.Options{})
	require.NoError(t, w1.Start())
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "compute.boot", Target: "shop-web-1", Latency: time.Minute})
	require.NoError(t, err)
	run := e.startDrill(workflows.DrillInput{Group: "shop", HoldSeconds: 600}, "", queue)
	e.waitStep(run, workflows.BootStep("web"), ferry.StepRunning)
	e.waitBootStarted(run)

	// The worker goes away mid-boot; another one picks the run up from its
	// history, with everything the drill recorded it made.
	w1.Stop()
	require.NoError(t, e.sim.ClearFaults(e.ctx))
	w2 := worker.New(temporalClient, queue, acts, worker.Options{})
	require.NoError(t, w2.Start())
	t.Cleanup(w2.Stop)
	// A query that met the stopping worker may fail: poll through that.
	var p ferry.Run
	var qerr error
	held := func() bool {
		var v converter.EncodedValue
		v, qerr = temporalClient.QueryWorkflow(e.ctx, run.GetID(), run.GetRunID(), workflows.QueryProgress)
		p = ferry.Run{}
		return qerr == nil && v.Get(&p) == nil && p.State == ferry.RunPaused
	}
	for deadline := time.Now().Add(30 * time.Second); !held() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, qerr)
	require.Equal(t, ferry.RunPaused, p.State, "the run never reached its hold on the second worker: %+v", p.Steps)
	require.True(t, p.Checks[0].Passed)
	require.NoError(t, e.steer(run, workflows.UpdateResume, "xena"))
	r := e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.GreaterOrEqual(t, stepOf(t, r, workflows.BootStep("web")).Attempts, 1)
	require.Equal(t, before, e.state())
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestScheduledDrillRefusedWhileTheGroupHasAnotherRun(t *testing.T) {
	e := newEnv(t)
	before := e.state()

	// A failover of crm waits for approval under the group's lock id.
	fo := e.start(workflows.FailoverInput{Group: "crm", Mode: ferry.ModePlanned})
	e.waitState(fo, ferry.RunWaitingApproval)
	d := e.startDrill(workflows.DrillInput{Group: "crm", Scheduled: true}, "ferry-drill-crm-1", "")
	r := e.result(d)
	recordHistory(t, d, "drill-refused")
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, "another active run")
	require.Contains(t, r.Flags, "scheduled")
	require.Equal(t, ferry.StepSkipped, stepOf(t, r, workflows.StepCleanup).State)
	require.Equal(t, before, e.state())
	// The scheduled drill has its own record, so it shows in the run list.
	rec, err := e.st.GetRun(e.ctx, d.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunFailed, rec.State)
	require.Equal(t, "schedule", rec.RequestedBy)

	// A scheduled drill holding shop is seen by the next one through its
	// run record: its workflow id is not the group's lock.
	first := e.startDrill(workflows.DrillInput{Group: "shop", Scheduled: true, HoldSeconds: 600}, "ferry-drill-shop-1", "")
	e.waitState(first, ferry.RunPaused)
	active, err := e.st.ActiveRuns(e.ctx, "shop")
	require.NoError(t, err)
	require.Len(t, active, 1)
	require.Equal(t, first.GetRunID(), active[0].ID)
	second := e.startDrill(workflows.DrillInput{Group: "shop", Scheduled: true}, "ferry-drill-shop-2", "")
	r = e.result(second)
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, first.GetRunID())
	require.NoError(t, e.steer(first, workflows.UpdateResume, "yves"))
	require.Equal(t, ferry.RunCompleted, e.result(first).State)
	require.Equal(t, before, e.state())
}
