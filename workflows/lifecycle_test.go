package workflows_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/workflows"
)

// startLifecycle starts a lifecycle run under the group's workflow id.
func (e *env) startLifecycle(name string, in workflows.LifecycleInput) client.WorkflowRun {
	e.t.Helper()
	if in.MaxAttempts == 0 {
		in.MaxAttempts = 2
	}
	run, err := temporalClient.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID:                       workflows.GroupWorkflowID(in.Group),
		TaskQueue:                e.tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, name, in)
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = temporalClient.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test ended")
	})
	return run
}

// requireSteps checks the run's steps are exactly the kind's, each
// completed or skipped.
func requireSteps(t *testing.T, r ferry.Run, kind string) {
	t.Helper()
	var got []string
	for _, s := range r.Steps {
		got = append(got, s.Name)
		require.Contains(t, []string{ferry.StepCompleted, ferry.StepSkipped}, s.State, "step %s: %s", s.Name, s.Error)
	}
	require.Equal(t, workflows.LifecycleSteps(kind), got)
}

func (e *env) replicaStatus(res, site string) (drivers.ReplicaStatus, bool) {
	e.t.Helper()
	rs, err := e.sim.ReplicationStatus(e.ctx, []string{res})
	require.NoError(e.t, err)
	for _, r := range rs {
		if r.Site == site {
			return r, true
		}
	}
	return drivers.ReplicaStatus{}, false
}

func TestUnprotectThenProtect(t *testing.T) {
	e := newEnv(t)
	g := demoGroup(t, "shop")
	for _, r := range groupResources(g) {
		_, err := e.sim.Write(e.ctx, r, 2)
		require.NoError(t, err)
	}

	run := e.startLifecycle(workflows.UnprotectWorkflowName, workflows.LifecycleInput{Group: "shop", RequestedBy: "ivan"})
	r := e.result(run)
	recordHistory(t, run, "unprotect")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSteps(t, r, ferry.KindUnprotect)
	require.Equal(t, "site-b", r.Site)
	require.Len(t, r.Touched, len(groupResources(g)))
	for _, res := range groupResources(g) {
		info, err := e.sim.ResourceInfo(e.ctx, res)
		require.NoError(t, err)
		require.Len(t, info.Replicas, 1, res)
		require.Equal(t, "site-a", info.ActiveSite)
	}
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunCompleted, rec.State)
	require.Equal(t, ferry.KindUnprotect, rec.Kind)
	// The inventory forgets the removed replicas.
	stored, err := e.st.ListReplicas(e.ctx, "shop")
	require.NoError(t, err)
	require.NotEmpty(t, stored)
	for _, rep := range stored {
		require.Equal(t, "site-a", rep.Site, "a removed replica is still recorded: %+v", rep)
	}

	// Production kept writing while unprotected.
	_, err = e.sim.Write(e.ctx, "shop-db-data", 3)
	require.NoError(t, err)

	run = e.startLifecycle(workflows.ProtectWorkflowName, workflows.LifecycleInput{Group: "shop", RequestedBy: "ivan"})
	r = e.result(run)
	recordHistory(t, run, "protect")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSteps(t, r, ferry.KindProtect)
	require.Contains(t, stepOf(t, r, workflows.StepEnableReplication).Note, "created 7 replica(s)")
	require.NotNil(t, r.RPOSeconds)
	require.LessOrEqual(t, *r.RPOSeconds, float64(g.RPOSeconds))
	for _, res := range groupResources(g) {
		st, ok := e.replicaStatus(res, "site-b")
		require.True(t, ok, res)
		require.Equal(t, ferry.ReplicaInSync, st.State, res)
	}
	info, err := e.sim.ResourceInfo(e.ctx, "shop-db-data")
	require.NoError(t, err)
	require.EqualValues(t, 5, info.ActiveSeq)
	for _, rep := range info.Replicas {
		require.EqualValues(t, 5, rep.Seq, "replica at %s holds every write", rep.Site)
	}
	// The inventory's replicas were recorded by the run.
	reps, err := e.st.ListReplicas(e.ctx, "shop")
	require.NoError(t, err)
	found := false
	for _, rp := range reps {
		if rp.Resource == "shop-db-data" && rp.Site == "site-b" {
			found = true
			require.Equal(t, ferry.ReplicaInSync, rp.State)
			require.EqualValues(t, 5, rp.Seq)
		}
	}
	require.True(t, found)

	// Protecting a protected group changes nothing.
	run = e.startLifecycle(workflows.ProtectWorkflowName, workflows.LifecycleInput{Group: "shop"})
	r = e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Contains(t, stepOf(t, r, workflows.StepEnableReplication).Note, "every resource has a replica")

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestProtectFailureRemovesOnlyWhatItCreated(t *testing.T) {
	e := newEnv(t)
	// crm-db-data loses its DR replica; the others keep theirs.
	require.NoError(t, e.cloud.DisableReplication(e.ctx, "setup", "b-block", []string{"crm-db-data"}))
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.enable_replication", Kind: drivers.Permanent})
	require.NoError(t, err)
	before := e.state()
	run := e.startLifecycle(workflows.ProtectWorkflowName, workflows.LifecycleInput{Group: "crm"})
	r := e.result(run)
	recordHistory(t, run, "protect-rolled-back")
	require.Equal(t, ferry.RunRolledBack, r.State, r.Message)
	require.Equal(t, ferry.StepCompensated, stepOf(t, r, workflows.StepEnableReplication).State)
	require.Equal(t, before, e.state(), "rollback leaves the replicas as they were")
}

func TestSuspendThenResume(t *testing.T) {
	e := newEnv(t)
	g := demoGroup(t, "shop")
	_, err := e.sim.Write(e.ctx, "shop-db-data", 2)
	require.NoError(t, err)

	run := e.startLifecycle(workflows.SuspendWorkflowName, workflows.LifecycleInput{Group: "shop", RequestedBy: "judy"})
	r := e.result(run)
	recordHistory(t, run, "suspend")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSteps(t, r, ferry.KindSuspend)
	require.Contains(t, r.Flags, "replication-suspended")
	for _, res := range groupResources(g) {
		st, ok := e.replicaStatus(res, "site-b")
		require.True(t, ok)
		require.True(t, st.Suspended, res)
	}

	// Production writes; the DR replica applies none of it and its lag grows.
	_, err = e.sim.Write(e.ctx, "shop-db-data", 3)
	require.NoError(t, err)
	var first time.Duration
	require.Eventually(t, func() bool {
		st, _ := e.replicaStatus("shop-db-data", "site-b")
		first = st.Lag
		return st.Lag > 50*time.Millisecond
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		st, _ := e.replicaStatus("shop-db-data", "site-b")
		return st.Lag > first && st.Seq == 2 && st.Suspended
	}, 5*time.Second, 10*time.Millisecond, "the lag keeps growing while suspended")

	// Resume brings the replicas back in sync.
	run = e.startLifecycle(workflows.ResumeWorkflowName, workflows.LifecycleInput{Group: "shop", RequestedBy: "judy"})
	r = e.result(run)
	recordHistory(t, run, "resume")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSteps(t, r, ferry.KindResume)
	require.NotNil(t, r.RPOSeconds)
	for _, res := range groupResources(g) {
		st, ok := e.replicaStatus(res, "site-b")
		require.True(t, ok)
		require.False(t, st.Suspended, res)
		require.Equal(t, ferry.ReplicaInSync, st.State, res)
	}
	st, _ := e.replicaStatus("shop-db-data", "site-b")
	require.EqualValues(t, 5, st.Seq)

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestProtectRefusesASuspendedGroup(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.cloud.SuspendReplication(e.ctx, "setup", "a-block", []string{"shop-db-data"}))
	run := e.startLifecycle(workflows.ReprotectWorkflowName, workflows.LifecycleInput{Group: "shop"})
	r := e.result(run)
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, "suspended")
}

// unplannedFailover leaves shop active at site-b after site-a died with
// writes nobody replicated: 5 on shop-db-data and 2 on shop-db-log.
func unplannedFailover(t *testing.T, e *env) {
	t.Helper()
	g := demoGroup(t, "shop")
	for _, r := range groupResources(g) {
		_, err := e.sim.Write(e.ctx, r, 4)
		require.NoError(t, err)
	}
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", time.Hour))
	_, err := e.sim.Write(e.ctx, "shop-db-data", 5)
	require.NoError(t, err)
	_, err = e.sim.Write(e.ctx, "shop-db-log", 2)
	require.NoError(t, err)
	require.NoError(t, e.sim.SetSiteDown(e.ctx, "site-a", true))
	fo := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModeUnplanned})
	r := e.result(fo)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.EqualValues(t, 7, *r.WritesLost)

	// The new active takes writes; the old site comes back holding its
	// unreplicated ones, fenced.
	_, err = e.sim.Write(e.ctx, "shop-db-data", 3)
	require.NoError(t, err)
	require.NoError(t, e.sim.SetSiteDown(e.ctx, "site-a", false))
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", 0))
	_, err = e.sim.WriteAt(e.ctx, "shop-db-data", "site-a", 1)
	require.Error(t, err, "a returning old primary takes no write")
	st, err := e.sim.BackendStatus(e.ctx, "a-block")
	require.NoError(t, err)
	require.True(t, st.Fenced)
}

func discardedTruth(t *testing.T, e *env) int64 {
	t.Helper()
	var n int64
	for _, res := range groupResources(demoGroup(t, "shop")) {
		info, err := e.sim.ResourceInfo(e.ctx, res)
		require.NoError(t, err)
		n += info.DiscardedWrites
	}
	return n
}

func TestReprotectAfterUnplannedFailover(t *testing.T) {
	e := newEnv(t)
	unplannedFailover(t, e)

	run := e.startLifecycle(workflows.ReprotectWorkflowName, workflows.LifecycleInput{Group: "shop", RequestedBy: "kim"})
	r := e.result(run)
	recordHistory(t, run, "reprotect-unplanned")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSteps(t, r, ferry.KindReprotect)
	require.Equal(t, "site-a", r.Site)
	require.NotNil(t, r.WritesDiscarded)
	require.EqualValues(t, 7, discardedTruth(t, e))
	require.Equal(t, discardedTruth(t, e), *r.WritesDiscarded, "the run reports exactly what the storage discarded")
	require.Contains(t, stepOf(t, r, workflows.StepResync).Note, "7")
	require.Contains(t, stepOf(t, r, workflows.StepUnfence).Note, "a-block unfenced")
	require.Contains(t, r.Flags, "writes-discarded")

	// The old primary is a secondary of site-b now: unfenced, still no
	// writer, and it holds every write of the new active.
	st, err := e.sim.BackendStatus(e.ctx, "a-block")
	require.NoError(t, err)
	require.False(t, st.Fenced)
	_, err = e.sim.WriteAt(e.ctx, "shop-db-data", "site-a", 1)
	require.Error(t, err, "reprotect never resumes the old primary as a writer")
	info, err := e.sim.ResourceInfo(e.ctx, "shop-db-data")
	require.NoError(t, err)
	require.Equal(t, "site-b", info.ActiveSite)
	for _, rep := range info.Replicas {
		require.EqualValues(t, 7, rep.Seq, rep.Site)
		require.False(t, rep.Diverged)
	}
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.NotNil(t, rec.WritesDiscarded)
	require.EqualValues(t, 7, *rec.WritesDiscarded)

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestFailbackAfterPlannedFailover(t *testing.T) {
	e := newEnv(t)
	g := demoGroup(t, "shop")
	for _, r := range groupResources(g) {
		_, err := e.sim.Write(e.ctx, r, 2)
		require.NoError(t, err)
	}
	fo := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	require.Equal(t, ferry.RunCompleted, e.result(fo).State)
	// Life goes on at the DR site.
	for _, r := range groupResources(g) {
		_, err := e.sim.Write(e.ctx, r, 3)
		require.NoError(t, err)
	}

	run := e.startLifecycle(workflows.FailbackWorkflowName, workflows.LifecycleInput{Group: "shop", RequestedBy: "leo"})
	r := e.result(run)
	recordHistory(t, run, "failback-planned")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSteps(t, r, ferry.KindFailback)
	require.Equal(t, "site-a", r.Site)
	require.EqualValues(t, 0, *r.WritesDiscarded)
	require.EqualValues(t, 0, *r.WritesLost)
	require.NotNil(t, r.RTOSeconds)

	for _, res := range groupResources(g) {
		info, err := e.sim.ResourceInfo(e.ctx, res)
		require.NoError(t, err)
		require.Equal(t, "site-a", info.ActiveSite, res)
		require.EqualValues(t, 5, info.ActiveSeq, res)
		st, ok := e.replicaStatus(res, "site-b")
		require.True(t, ok)
		require.Equal(t, ferry.ReplicaInSync, st.State, "replication runs in the original direction again")
	}
	grp, err := e.st.GetGroup(e.ctx, "shop")
	require.NoError(t, err)
	require.Equal(t, "site-a", grp.ActiveSite)
	dns, err := e.sim.Get(e.ctx, "shop.demo.example", "A")
	require.NoError(t, err)
	require.Equal(t, "10.1.0.10", dns.Value)

	// The failover back is a run of its own, recorded and findable.
	fb := stepOf(t, r, workflows.StepFailoverHome)
	runs, _, err := e.st.ListRuns(e.ctx, ferry.RunFilter{Group: "shop", Kind: ferry.KindFailover})
	require.NoError(t, err)
	var child *ferry.Run
	for i := range runs {
		if runs[i].WorkflowID == workflows.FailbackFailoverID("shop") {
			child = &runs[i]
		}
	}
	require.NotNil(t, child, "the failback's failover is recorded")
	require.Equal(t, ferry.RunCompleted, child.State)
	require.Contains(t, fb.Note, child.ID)

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestFailbackAfterUnplannedFailoverDiscardsTheOldPrimarysWrites(t *testing.T) {
	e := newEnv(t)
	unplannedFailover(t, e)
	g := demoGroup(t, "shop")
	atB := map[string]int64{}
	for _, res := range groupResources(g) {
		info, err := e.sim.ResourceInfo(e.ctx, res)
		require.NoError(t, err)
		require.Equal(t, "site-b", info.ActiveSite)
		atB[res] = info.ActiveSeq
	}
	require.EqualValues(t, 7, atB["shop-db-data"])

	// An application at site-a keeps trying to write through the whole
	// failback. A write the old primary took while not the active would be
	// lost to the resync or the promote; every accepted write must survive.
	var accepted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := e.sim.WriteAt(context.Background(), "shop-db-data", "site-a", 1); err == nil {
				accepted.Add(1)
			}
		}
	}()

	run := e.startLifecycle(workflows.FailbackWorkflowName, workflows.LifecycleInput{Group: "shop", RequestedBy: "mia"})
	r := e.result(run)
	close(stop)
	wg.Wait()
	recordHistory(t, run, "failback-unplanned")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Positive(t, accepted.Load(), "site-a took writes once it was the active again")
	requireSteps(t, r, ferry.KindFailback)

	// Exactly the discarded count the simulator reports.
	require.NotNil(t, r.WritesDiscarded)
	require.EqualValues(t, 7, discardedTruth(t, e))
	require.Equal(t, discardedTruth(t, e), *r.WritesDiscarded)
	require.Contains(t, r.Flags, "writes-discarded")

	// Every write of the new active came home, and every write site-a
	// accepted was made while it was the active again (none vanished).
	for _, res := range groupResources(g) {
		info, err := e.sim.ResourceInfo(e.ctx, res)
		require.NoError(t, err)
		require.Equal(t, "site-a", info.ActiveSite, res)
		want := atB[res]
		if res == "shop-db-data" {
			want += accepted.Load()
		}
		require.Equal(t, want, info.ActiveSeq, res)
		for _, rep := range info.Replicas {
			require.False(t, rep.Diverged, res)
		}
	}
	st, err := e.sim.BackendStatus(e.ctx, "a-block")
	require.NoError(t, err)
	require.False(t, st.Fenced)

	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunCompleted, rec.State)
	require.EqualValues(t, 7, *rec.WritesDiscarded)
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestFailbackOfAGroupAtHomeIsRefused(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	run := e.startLifecycle(workflows.FailbackWorkflowName, workflows.LifecycleInput{Group: "shop"})
	r := e.result(run)
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, "already runs at its primary site")
	require.Equal(t, before, e.state())
}

func TestUnprotectWaitsForApproval(t *testing.T) {
	e := newEnv(t)
	run := e.startLifecycle(workflows.UnprotectWorkflowName, workflows.LifecycleInput{Group: "crm"})
	p := e.waitState(run, ferry.RunWaitingApproval)
	require.Equal(t, ferry.StepPending, stepOf(t, p, workflows.StepDisableReplication).State)
	require.NoError(t, e.steer(run, workflows.UpdateApprove, "nina"))
	r := e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "nina", r.Approvals[0].By)
	info, err := e.sim.ResourceInfo(e.ctx, "crm-db-data")
	require.NoError(t, err)
	require.Len(t, info.Replicas, 1)
}

func TestResumeFailurePausesThenRetryCompletes(t *testing.T) {
	e := newEnv(t)
	g := demoGroup(t, "shop")
	require.NoError(t, e.cloud.SuspendReplication(e.ctx, "setup-block", "a-block", []string{"shop-db-data", "shop-db-log",
		"shop-app-1-root", "shop-app-2-root", "shop-web-1-root", "shop-web-2-root"}))
	require.NoError(t, e.cloud.SuspendReplication(e.ctx, "setup-files", "a-files", []string{"shop-media"}))
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.resume_replication", Target: "a-files", Kind: drivers.Permanent})
	require.NoError(t, err)

	run := e.startLifecycle(workflows.ResumeWorkflowName, workflows.LifecycleInput{Group: "shop"})
	p := e.waitState(run, ferry.RunPaused)
	require.Equal(t, ferry.StepFailed, stepOf(t, p, workflows.StepResumeReplication).State)
	require.Contains(t, p.Message, "a-files")

	require.NoError(t, e.sim.ClearFaults(e.ctx))
	require.NoError(t, e.steer(run, workflows.UpdateRetry, "olga"))
	r := e.result(run)
	recordHistory(t, run, "resume-paused-retry")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, 2, stepOf(t, r, workflows.StepResumeReplication).Attempts)
	for _, res := range groupResources(g) {
		st, ok := e.replicaStatus(res, "site-b")
		require.True(t, ok)
		require.False(t, st.Suspended, res)
	}
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestReprotectThawsWhatTheFailoverFrozeWithItsFence(t *testing.T) {
	e := newEnv(t)
	// An unplanned failover with the primary still answering: it freezes
	// and fences a-block.
	_, err := e.sim.Write(e.ctx, "shop-db-data", 2)
	require.NoError(t, err)
	fo := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModeUnplanned})
	require.Equal(t, ferry.RunCompleted, e.result(fo).State)
	st, err := e.sim.BackendStatus(e.ctx, "a-block")
	require.NoError(t, err)
	require.True(t, st.Frozen)
	require.True(t, st.Fenced)

	run := e.startLifecycle(workflows.ReprotectWorkflowName, workflows.LifecycleInput{Group: "shop"})
	r := e.result(run)
	recordHistory(t, run, "reprotect-frozen")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.EqualValues(t, 0, *r.WritesDiscarded)
	st, err = e.sim.BackendStatus(e.ctx, "a-block")
	require.NoError(t, err)
	require.False(t, st.Frozen)
	require.False(t, st.Fenced)
	_, err = e.sim.WriteAt(e.ctx, "shop-db-data", "site-a", 1)
	require.Error(t, err, "the old primary is a secondary, not a writer")
	_, err = e.sim.Write(e.ctx, "shop-db-data", 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, ok := e.replicaStatus("shop-db-data", "site-a")
		return ok && s.Seq == 3 && s.State == ferry.ReplicaInSync
	}, 5*time.Second, 20*time.Millisecond)
}
