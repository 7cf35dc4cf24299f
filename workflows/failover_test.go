package workflows_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// One real Temporal dev server for the package; each test gets its own
// task queue, database and simulated cloud.
var temporalClient client.Client

func TestMain(m *testing.M) {
	srv, err := devserver.StartEphemeral(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "workflows tests need the Temporal dev server:", err)
		os.Exit(1)
	}
	temporalClient = srv.Client()
	code := m.Run()
	_ = srv.Stop()
	os.Exit(code)
}

type env struct {
	t     *testing.T
	ctx   context.Context
	cloud *sim.Cloud
	sim   *sim.Client
	st    *store.Store
	tq    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, sim.Options{BootTime: 20 * time.Millisecond})
}

// newEnvWith is newEnv with the simulator's options of the test's choice.
func newEnvWith(t *testing.T, opts sim.Options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, st: storetest.New(t), tq: "test-" + strings.ReplaceAll(t.Name(), "/", "-")}
	inv := demo.Inventory()
	require.NoError(t, e.st.ApplyInventory(ctx, inv))
	e.cloud = sim.NewCloud(opts)
	require.NoError(t, e.cloud.LoadInventory(inv))
	e.sim = sim.NewInProcess(e.cloud)
	acts := &activities.Activities{Drivers: e.sim.Set(), Store: e.st}
	w := worker.New(temporalClient, e.tq, acts, worker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return e
}

// start starts a failover of group; the workflow id is the group's, so a
// test cleans up after itself by terminating what it left running.
func (e *env) start(in workflows.FailoverInput) client.WorkflowRun {
	e.t.Helper()
	if in.MaxAttempts == 0 {
		in.MaxAttempts = 2 // keep retry loops short in tests
	}
	run, err := temporalClient.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID:                       workflows.GroupWorkflowID(in.Group),
		TaskQueue:                e.tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.FailoverWorkflowName, in)
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = temporalClient.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test ended")
	})
	return run
}

func (e *env) result(run client.WorkflowRun) ferry.Run {
	e.t.Helper()
	var r ferry.Run
	require.NoError(e.t, run.Get(e.ctx, &r))
	return r
}

func (e *env) progress(run client.WorkflowRun) ferry.Run {
	e.t.Helper()
	v, err := temporalClient.QueryWorkflow(e.ctx, run.GetID(), run.GetRunID(), workflows.QueryProgress)
	require.NoError(e.t, err)
	var r ferry.Run
	require.NoError(e.t, v.Get(&r))
	return r
}

// waitState waits until the run's live state is want.
func (e *env) waitState(run client.WorkflowRun, want string) ferry.Run {
	e.t.Helper()
	var last ferry.Run
	require.Eventually(e.t, func() bool {
		last = e.progress(run)
		return last.State == want
	}, 30*time.Second, 50*time.Millisecond, "run never reached %s", want)
	return last
}

func (e *env) steer(run client.WorkflowRun, update, by string) error {
	h, err := temporalClient.UpdateWorkflow(e.ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: update,
		Args: []any{workflows.SteerRequest{By: by}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(e.ctx, nil)
}

func (e *env) state() sim.State {
	s, err := e.sim.State(e.ctx)
	require.NoError(e.t, err)
	return s
}

func stepOf(t *testing.T, r ferry.Run, name string) ferry.Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("run has no step %s: %+v", name, r.Steps)
	return ferry.Step{}
}

// requireExactlyOnce proves invariant 3 on the simulator's ledger: no
// idempotency key changed anything twice.
func requireExactlyOnce(t *testing.T, ledger []sim.LedgerEntry) {
	t.Helper()
	applied := map[string]int{}
	for _, l := range ledger {
		if l.Outcome == sim.OutcomeApplied {
			applied[l.Key]++
		}
	}
	require.NotEmpty(t, applied, "the run changed nothing")
	for k, n := range applied {
		require.Equal(t, 1, n, "key %s applied %d times", k, n)
	}
}

func groupResources(g ferry.Group) []string {
	var out []string
	for _, v := range g.Volumes {
		out = append(out, v.Name)
	}
	for _, s := range g.Shares {
		out = append(out, s.Name)
	}
	return out
}

func demoGroup(t *testing.T, name string) ferry.Group {
	for _, g := range demo.Inventory().Groups {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no demo group %s", name)
	return ferry.Group{}
}

func TestPlannedFailover(t *testing.T) {
	e := newEnv(t)
	g := demoGroup(t, "shop")
	for _, r := range groupResources(g) {
		_, err := e.sim.Write(e.ctx, r, 3)
		require.NoError(t, err)
	}
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned, RequestedBy: "alice"})
	r := e.result(run)
	recordHistory(t, run, "planned")

	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "site-b", r.Site)
	want := workflows.FailoverSteps(g, ferry.ModePlanned)
	var got []string
	for _, s := range r.Steps {
		got = append(got, s.Name)
		if s.Name == workflows.StepApproval {
			require.Equal(t, ferry.StepSkipped, s.State)
			continue
		}
		require.Equal(t, ferry.StepCompleted, s.State, "step %s: %s", s.Name, s.Error)
	}
	require.Equal(t, want, got)
	require.NotNil(t, r.WritesLost)
	require.Zero(t, *r.WritesLost, "a planned failover loses no write")
	require.NotNil(t, r.RTOSeconds)
	require.Equal(t, []ferry.CheckOutcome{{Name: "shop-home", Passed: true}}, r.Checks, "the report carries the checks")

	// The simulator agrees: every resource active at site-b with every write.
	for _, res := range groupResources(g) {
		info, err := e.sim.ResourceInfo(e.ctx, res)
		require.NoError(t, err)
		require.Equal(t, "site-b", info.ActiveSite, res)
		require.Zero(t, info.LostWrites, res)
		require.EqualValues(t, 3, info.ActiveSeq, res)
	}
	// Every member of the DR cluster was told and holds the new id.
	st, err := e.sim.BackendStatus(e.ctx, "b-block")
	require.NoError(t, err)
	require.Len(t, st.Members, 3)
	for _, m := range st.Members {
		require.Equal(t, "site-b", m.ActiveBackendID, m.Name)
	}
	dns, err := e.sim.Get(e.ctx, "shop.demo.example", "A")
	require.NoError(t, err)
	require.Equal(t, "10.2.0.10", dns.Value)
	health, err := e.sim.Health(e.ctx, "site-b", []string{"shop-db-1", "shop-app-1", "shop-web-2"})
	require.NoError(t, err)
	for _, h := range health {
		require.True(t, h.Healthy, h.Name)
	}

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)

	// The record is in PostgreSQL, and the group now runs at site-b.
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunCompleted, rec.State)
	require.Equal(t, "alice", rec.RequestedBy)
	require.Len(t, rec.Steps, len(want))
	grp, err := e.st.GetGroup(e.ctx, "shop")
	require.NoError(t, err)
	require.Equal(t, "site-b", grp.ActiveSite)
}

func TestUnplannedFailoverLosesExactlyWhatTheStorageLost(t *testing.T) {
	e := newEnv(t)
	g := demoGroup(t, "shop")
	for _, r := range groupResources(g) {
		_, err := e.sim.Write(e.ctx, r, 4) // replicated (lag 0)
		require.NoError(t, err)
	}
	// Replication falls behind, the primary keeps writing, then the site dies.
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", time.Hour))
	_, err := e.sim.Write(e.ctx, "shop-db-data", 5)
	require.NoError(t, err)
	_, err = e.sim.Write(e.ctx, "shop-db-log", 2)
	require.NoError(t, err)
	require.NoError(t, e.sim.SetSiteDown(e.ctx, "site-a", true))

	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModeUnplanned})
	r := e.result(run)
	recordHistory(t, run, "unplanned")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.StepFence).State)
	require.Contains(t, stepOf(t, r, workflows.StepPrecheck).Note, "unreachable")

	var truth int64
	for _, res := range groupResources(g) {
		info, err := e.sim.ResourceInfo(e.ctx, res)
		require.NoError(t, err)
		require.Equal(t, "site-b", info.ActiveSite)
		truth += info.LostWrites
	}
	require.EqualValues(t, 7, truth)
	require.NotNil(t, r.WritesLost)
	require.Equal(t, truth, *r.WritesLost, "the run reports exactly the writes the simulator lost")
	require.NotNil(t, r.RPOSeconds)
	require.Greater(t, *r.RPOSeconds, 0.0)

	// Invariant 1: the old primary comes back fenced; it takes no write.
	require.NoError(t, e.sim.SetSiteDown(e.ctx, "site-a", false))
	_, err = e.sim.WriteAt(e.ctx, "shop-db-data", "site-a", 1)
	require.Error(t, err, "the old primary must not accept writes after an unplanned failover")
	_, err = e.sim.Write(e.ctx, "shop-db-data", 1) // the new active does
	require.NoError(t, err)

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestQuiesceFailureAbortPolicyRollsBack(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "compute.quiesce", Kind: drivers.Permanent})
	require.NoError(t, err)
	// crm's policy is abort; its approval is waived at start.
	run := e.start(workflows.FailoverInput{Group: "crm", Mode: ferry.ModePlanned, SkipApproval: true, RequestedBy: "bob"})
	r := e.result(run)
	recordHistory(t, run, "quiesce-abort-rolled-back")
	require.Equal(t, ferry.RunRolledBack, r.State)
	require.Equal(t, ferry.StepCompensated, stepOf(t, r, workflows.StepQuiesce).State)
	require.Equal(t, ferry.StepPending, stepOf(t, r, workflows.StepPromote).State)
	require.Equal(t, before, e.state(), "rollback leaves the cloud as it was")
}

func TestQuiesceFailureContinuePolicyGoesOnCrashConsistent(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "compute.quiesce", Kind: drivers.Permanent})
	require.NoError(t, err)
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	r := e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Contains(t, r.Flags, "crash-consistent")
	require.Contains(t, stepOf(t, r, workflows.StepQuiesce).Note, "crash-consistent")
	require.Zero(t, *r.WritesLost)
}

func TestFailureBeforePromoteCompensates(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	// Promote fails for good on both DR backends: demote, stop and quiesce
	// must be undone.
	for _, be := range []string{"b-block", "b-files"} {
		_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.promote", Target: be, Kind: drivers.Permanent})
		require.NoError(t, err)
	}
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	r := e.result(run)
	recordHistory(t, run, "compensated")
	require.Equal(t, ferry.RunRolledBack, r.State)
	require.Contains(t, r.Message, "promote")
	for _, s := range []string{workflows.StepDemote, workflows.StepStopPrimary, workflows.StepQuiesce} {
		require.Equal(t, ferry.StepCompensated, stepOf(t, r, s).State, s)
	}
	require.Eventually(t, func() bool {
		return assertEqualState(before, e.state())
	}, 5*time.Second, 50*time.Millisecond, "the cloud after rollback differs from before:\nbefore %+v\nafter  %+v", before, e.state())
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunRolledBack, rec.State)
}

func assertEqualState(a, b sim.State) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestFailureAfterPromotePausesThenRetryCompletes(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "dns.replace", Kind: drivers.Permanent})
	require.NoError(t, err)
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	p := e.waitState(run, ferry.RunPaused)
	require.Equal(t, ferry.StepFailed, stepOf(t, p, workflows.StepDNS).State)
	require.Contains(t, p.Message, "dns")
	// Resume is refused: a failed step needs retry, skip or abort.
	require.ErrorContains(t, e.steer(run, workflows.UpdateResume, "carol"), "retry, skip or abort")

	require.NoError(t, e.sim.ClearFaults(e.ctx))
	require.NoError(t, e.steer(run, workflows.UpdateRetry, "carol"))
	r := e.result(run)
	recordHistory(t, run, "paused-retry")
	require.Equal(t, ferry.RunCompleted, r.State)
	dnsStep := stepOf(t, r, workflows.StepDNS)
	require.Equal(t, ferry.StepCompleted, dnsStep.State)
	require.Equal(t, 2, dnsStep.Attempts)
	require.Equal(t, "retry", r.Events[len(r.Events)-1].Action)
	require.Equal(t, "carol", r.Events[len(r.Events)-1].By)
	require.Equal(t, workflows.StepDNS, r.Events[len(r.Events)-1].Step)
}

func TestApprovalGate(t *testing.T) {
	e := newEnv(t)
	run := e.start(workflows.FailoverInput{Group: "crm", Mode: ferry.ModePlanned})
	p := e.waitState(run, ferry.RunWaitingApproval)
	require.Equal(t, ferry.StepRunning, stepOf(t, p, workflows.StepApproval).State)
	require.Equal(t, ferry.StepPending, stepOf(t, p, workflows.StepQuiesce).State, "nothing acts before approval")
	// Retry means nothing while waiting for approval.
	require.ErrorContains(t, e.steer(run, workflows.UpdateRetry, "dave"), "no failed step")
	require.NoError(t, e.steer(run, workflows.UpdateApprove, "dave"))
	require.Error(t, e.steer(run, workflows.UpdateApprove, "dave"), "a second approval is refused")
	r := e.result(run)
	recordHistory(t, run, "approval")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Len(t, r.Approvals, 1)
	require.Equal(t, "dave", r.Approvals[0].By)
	require.Contains(t, stepOf(t, r, workflows.StepApproval).Note, "dave")
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, "dave", rec.Approvals[0].By)
}

func TestAbortWhileWaitingForApproval(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	run := e.start(workflows.FailoverInput{Group: "crm", Mode: ferry.ModePlanned})
	e.waitState(run, ferry.RunWaitingApproval)
	require.NoError(t, e.steer(run, workflows.UpdateAbort, "erin"))
	r := e.result(run)
	require.Equal(t, ferry.RunAborted, r.State)
	require.Equal(t, before, e.state())
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	for _, l := range ledger {
		require.NotEqual(t, sim.OutcomeApplied, l.Outcome, "an aborted, unapproved run changed %s", l.Key)
	}
}

func TestAbortAfterPromoteEndsAborted(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "verify.check", Kind: drivers.Permanent})
	require.NoError(t, err)
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	e.waitState(run, ferry.RunPaused)
	require.NoError(t, e.steer(run, workflows.UpdateAbort, "frank"))
	r := e.result(run)
	recordHistory(t, run, "abort-after-promote")
	require.Equal(t, ferry.RunAborted, r.State)
	require.Contains(t, r.Message, "after promote")
	require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.StepPromote).State)
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunAborted, rec.State)
}

func TestMemberThatNeverAcknowledgesPausesAndSkipIsRecorded(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.failover_completed", Target: "b-volume-3", Kind: drivers.Unreachable})
	require.NoError(t, err)
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	p := e.waitState(run, ferry.RunPaused)
	fc := stepOf(t, p, workflows.StepFailoverCompleted)
	require.Equal(t, ferry.StepFailed, fc.State)
	require.Contains(t, fc.Error, "b-volume-3")
	require.NotContains(t, fc.Error, "b-volume-1")

	require.NoError(t, e.steer(run, workflows.UpdateSkip, "grace"))
	r := e.result(run)
	recordHistory(t, run, "member-skip")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSkipRecorded(t, r, "b-volume-3", "grace")

	// The two members that answered hold the new id; the skipped one not.
	st, err := e.sim.BackendStatus(e.ctx, "b-block")
	require.NoError(t, err)
	for _, m := range st.Members {
		if m.Name == "b-volume-3" {
			require.NotEqual(t, "site-b", m.ActiveBackendID)
		} else {
			require.Equal(t, "site-b", m.ActiveBackendID, m.Name)
		}
	}
}

func TestPauseAndResumeAtStepBoundary(t *testing.T) {
	e := newEnv(t)
	// Slow the snapshot so the pause lands while the run is busy.
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.snapshot_group", Latency: time.Second})
	require.NoError(t, err)
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	require.Eventually(t, func() bool {
		for _, s := range e.progress(run).Steps {
			if s.Name == workflows.StepSnapshot {
				return s.State == ferry.StepRunning
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, e.steer(run, workflows.UpdatePause, "heidi"))
	p := e.waitState(run, ferry.RunPaused)
	require.Equal(t, ferry.StepCompleted, stepOf(t, p, workflows.StepSnapshot).State)
	require.Equal(t, ferry.StepPending, stepOf(t, p, workflows.StepFinalSync).State, "a paused run starts no step")
	require.NoError(t, e.steer(run, workflows.UpdateResume, "heidi"))
	r := e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
}

// Two batches share one DR backend: each must be promoted, demoted and
// synced under keys of its own, not replay the other's answer.
func TestBatchesSharingABackendEachAct(t *testing.T) {
	e := newEnv(t)
	inv := ferry.Inventory{
		Backends: []ferry.Backend{{Name: "a-block-2", Site: "site-a", Type: ferry.BackendCinder, Members: []string{"a-volume-2"},
			ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "b-block"}}}},
		Groups: []ferry.Group{{
			Name: "pair", PrimarySite: "site-a", DRSite: "site-b", RPOSeconds: 60,
			Consistency: ferry.ConsistencyCrash, QuiescePolicy: ferry.QuiesceAbort,
			Volumes: []ferry.Volume{{Name: "pair-1", Backend: "a-block"}, {Name: "pair-2", Backend: "a-block-2"}},
			Tiers:   []ferry.Tier{{Name: "all", Servers: []ferry.Server{{Name: "pair-vm", Volumes: []string{"pair-1", "pair-2"}}}}},
		}},
	}
	require.NoError(t, e.st.ApplyInventory(e.ctx, inv))
	require.NoError(t, e.cloud.LoadInventory(inv))
	for _, v := range []string{"pair-1", "pair-2"} {
		_, err := e.sim.Write(e.ctx, v, 3)
		require.NoError(t, err)
	}
	r := e.result(e.start(workflows.FailoverInput{Group: "pair", Mode: ferry.ModePlanned}))
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	for _, v := range []string{"pair-1", "pair-2"} {
		info, err := e.sim.ResourceInfo(e.ctx, v)
		require.NoError(t, err)
		require.Equal(t, "site-b", info.ActiveSite, v)
		require.EqualValues(t, 3, info.ActiveSeq, v)
	}
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
	for _, l := range ledger {
		require.NotEqual(t, sim.OutcomeReplayed, l.Outcome, "%s replayed another batch's answer", l.Key)
	}
}

// requireSkipRecorded proves an operator's skip of failover_completed is in
// the run: the step skipped naming the silent member, the flag, the event
// with who skipped.
func requireSkipRecorded(t *testing.T, r ferry.Run, member, by string) {
	t.Helper()
	fc := stepOf(t, r, workflows.StepFailoverCompleted)
	require.Equal(t, ferry.StepSkipped, fc.State)
	require.Contains(t, fc.Note, member)
	require.Contains(t, r.Flags, "skipped:"+workflows.StepFailoverCompleted)
	last := r.Events[len(r.Events)-1]
	require.Equal(t, "skip", last.Action)
	require.Equal(t, by, last.By)
	require.Equal(t, workflows.StepFailoverCompleted, last.Step)
}
