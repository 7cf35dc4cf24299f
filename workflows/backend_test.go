package workflows_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/workflows"
)

// startBackendRun starts a backend-scoped run (backend failover or share
// promote) under id.
func (e *env) startBackendRun(id, name string, in any) client.WorkflowRun {
	e.t.Helper()
	run, err := temporalClient.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID:                       id,
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

func (e *env) backendFailover(backend, target string) client.WorkflowRun {
	e.t.Helper()
	return e.startBackendRun(workflows.BackendWorkflowID(backend), workflows.BackendFailoverWorkflowName,
		workflows.BackendFailoverInput{Backend: backend, TargetID: target, RequestedBy: "olga", MaxAttempts: 2})
}

func simBackend(t *testing.T, st sim.State, name string) sim.BackendState {
	t.Helper()
	for _, b := range st.Backends {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no backend %s in the simulator", name)
	return sim.BackendState{}
}

func (e *env) storedBackend(name string) ferry.Backend {
	e.t.Helper()
	b, err := e.st.GetBackend(e.ctx, name)
	require.NoError(e.t, err)
	return b
}

var aBlockVolumes = []string{"crm-app-root", "crm-db-data", "crm-web-root", "shop-app-1-root", "shop-app-2-root",
	"shop-db-data", "shop-db-log", "shop-web-1-root", "shop-web-2-root"}

func TestBackendFailoverEndToEnd(t *testing.T) {
	e := newEnv(t)
	// A volume of a non-replicated type on a-block: failover cannot take it.
	require.NoError(t, e.sim.CreateVolume(e.ctx, "scratch", "a-block"))
	for _, v := range []string{"shop-db-data", "crm-db-data", "scratch"} {
		_, err := e.sim.Write(e.ctx, v, 3)
		require.NoError(t, err)
	}

	run := e.backendFailover("a-block", "site-b")
	r := e.result(run)
	recordHistory(t, run, "backend-failover-completed")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, ferry.KindBackendFailover, r.Kind)
	require.Equal(t, "a-block", r.Backend)
	require.Equal(t, "site-b", r.Site)
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
		require.Equal(t, ferry.StepCompleted, s.State, "step %s: %s", s.Name, s.Error)
	}
	require.Equal(t, workflows.BackendFailoverSteps(), names)
	require.NotNil(t, r.WritesLost)
	require.Zero(t, *r.WritesLost, "a failover of a reachable backend loses nothing")
	require.NotNil(t, r.RTOSeconds)
	require.Contains(t, r.Touched, "error:scratch")
	require.Contains(t, r.Flags, "resources-in-error")
	require.Contains(t, stepOf(t, r, workflows.StepFailover).Note, "scratch")

	// Every replicated volume of a-block is active at site-b with every
	// write; the share (another backend) is untouched; scratch is in error.
	for _, v := range aBlockVolumes {
		info, err := e.sim.ResourceInfo(e.ctx, v)
		require.NoError(t, err)
		require.Equal(t, "site-b", info.ActiveSite, v)
		require.Zero(t, info.LostWrites, v)
		require.Empty(t, info.Status, v)
	}
	info, err := e.sim.ResourceInfo(e.ctx, "shop-db-data")
	require.NoError(t, err)
	require.EqualValues(t, 3, info.ActiveSeq)
	media, err := e.sim.ResourceInfo(e.ctx, "shop-media")
	require.NoError(t, err)
	require.Equal(t, "site-a", media.ActiveSite)
	scratch, err := e.sim.ResourceInfo(e.ctx, "scratch")
	require.NoError(t, err)
	require.Equal(t, sim.StatusError, scratch.Status)

	// Every member of the serving cluster holds the target id.
	st := e.state()
	bb := simBackend(t, st, "b-block")
	require.Len(t, bb.Members, 3)
	for _, m := range bb.Members {
		require.Equal(t, "site-b", m.ActiveBackendID, m.Name)
	}
	// failed-over in the simulator and in the store, and thawed in both.
	ab := simBackend(t, st, "a-block")
	require.Equal(t, ferry.ReplicationFailedOver, ab.ReplicationStatus)
	require.Equal(t, "site-b", ab.ActiveBackendID)
	require.False(t, ab.Frozen)
	stored := e.storedBackend("a-block")
	require.Equal(t, ferry.ReplicationFailedOver, stored.ReplicationStatus)
	require.Equal(t, "site-b", stored.ActiveBackendID)
	require.False(t, stored.Frozen)

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunCompleted, rec.State)
	require.Equal(t, "a-block", rec.Backend)
	require.Equal(t, "olga", rec.RequestedBy)

	// Fail back to "default": every volume comes home with the writes made
	// at site-b, and the backend is enabled again.
	_, err = e.sim.Write(e.ctx, "shop-db-data", 2)
	require.NoError(t, err)
	back := e.backendFailover("a-block", ferry.ActiveBackendDefault)
	r = e.result(back)
	recordHistory(t, back, "backend-failover-failback")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "site-a", r.Site)
	require.Zero(t, *r.WritesLost)
	for _, v := range append(aBlockVolumes, "scratch") {
		info, err := e.sim.ResourceInfo(e.ctx, v)
		require.NoError(t, err)
		require.Equal(t, "site-a", info.ActiveSite, v)
		require.Empty(t, info.Status, v)
	}
	info, err = e.sim.ResourceInfo(e.ctx, "shop-db-data")
	require.NoError(t, err)
	require.EqualValues(t, 5, info.ActiveSeq)
	st = e.state()
	ab = simBackend(t, st, "a-block")
	require.Equal(t, ferry.ReplicationEnabled, ab.ReplicationStatus)
	require.Empty(t, ab.ActiveBackendID)
	require.False(t, ab.Frozen)
	for _, m := range ab.Members {
		require.Equal(t, ferry.ActiveBackendDefault, m.ActiveBackendID, m.Name)
	}
	stored = e.storedBackend("a-block")
	require.Equal(t, ferry.ReplicationEnabled, stored.ReplicationStatus)
	require.Empty(t, stored.ActiveBackendID)
	require.False(t, stored.Frozen)
}

func TestBackendFailoverSilentMemberPausesAndSkipIsRecorded(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.failover_completed", Target: "b-volume-2", Kind: drivers.Unreachable})
	require.NoError(t, err)
	run := e.backendFailover("a-block", "site-b")
	p := e.waitState(run, ferry.RunPaused)
	fc := stepOf(t, p, workflows.StepFailoverCompleted)
	require.Equal(t, ferry.StepFailed, fc.State)
	require.Contains(t, fc.Error, "b-volume-2")
	require.NotContains(t, fc.Error, "b-volume-1")
	require.Equal(t, ferry.StepPending, stepOf(t, p, workflows.StepThaw).State)

	// While paused the backend is frozen: the storage refuses changes, and
	// so would the API for its groups.
	require.True(t, e.storedBackend("a-block").Frozen)
	_, err = e.sim.SnapshotGroup(e.ctx, "probe", "a-block", []string{"shop-db-data"})
	require.ErrorContains(t, err, "frozen")

	require.NoError(t, e.steer(run, workflows.UpdateSkip, "grace"))
	r := e.result(run)
	recordHistory(t, run, "backend-failover-member-skip")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	requireSkipRecorded(t, r, "b-volume-2", "grace")

	for _, m := range simBackend(t, e.state(), "b-block").Members {
		if m.Name == "b-volume-2" {
			require.NotEqual(t, "site-b", m.ActiveBackendID)
		} else {
			require.Equal(t, "site-b", m.ActiveBackendID, m.Name)
		}
	}
	require.False(t, e.storedBackend("a-block").Frozen, "thawed at the end")
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.StepSkipped, stepOf(t, rec, workflows.StepFailoverCompleted).State)
}

// withSecondTarget adds site-c and m-block, a backend at site-a that
// replicates to b-block (target "site-b") and c-block (target "site-c").
func withSecondTarget(t *testing.T, e *env) {
	t.Helper()
	inv := ferry.Inventory{
		Sites: []ferry.Site{{Name: "site-c"}},
		Backends: []ferry.Backend{
			{Name: "c-block", Site: "site-c", Type: "cinder", Members: []string{"c-volume-1"}},
			{Name: "m-block", Site: "site-a", Type: "cinder", Members: []string{"m-volume-1"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "b-block"}, {ID: "site-c", Backend: "c-block"}}},
		},
	}
	require.NoError(t, e.st.ApplyInventory(e.ctx, inv))
	require.NoError(t, e.cloud.LoadInventory(inv))
}

func TestBackendFailoverRefusesSecondaryToSecondaryBeforeAnyChange(t *testing.T) {
	e := newEnv(t)
	withSecondTarget(t, e)
	r := e.result(e.backendFailover("m-block", "site-c"))
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "site-c", e.storedBackend("m-block").ActiveBackendID)

	before, storedBefore := e.state(), e.storedBackend("m-block")
	run := e.backendFailover("m-block", "site-b")
	r = e.result(run)
	recordHistory(t, run, "backend-failover-secondary-refused")
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, "from one secondary to another")
	require.Equal(t, ferry.StepFailed, stepOf(t, r, workflows.StepPrecheck).State)
	for _, s := range []string{workflows.StepFreeze, workflows.StepFailover, workflows.StepThaw} {
		require.Equal(t, ferry.StepPending, stepOf(t, r, s).State, s)
	}
	require.Equal(t, before, e.state(), "a refused failover changes nothing")
	require.Equal(t, storedBefore, e.storedBackend("m-block"))

	// An unknown target is refused as clearly.
	r = e.result(e.backendFailover("a-block", "site-z"))
	require.Equal(t, ferry.RunFailed, r.State)
	require.Contains(t, r.Message, `no replication target "site-z"`)
	require.Equal(t, before, e.state())
}

func TestBackendFailoverStorageErrorIsFailoverError(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.failover_host", Kind: drivers.Permanent})
	require.NoError(t, err)
	run := e.backendFailover("a-block", "site-b")
	r := e.result(run)
	recordHistory(t, run, "backend-failover-error")
	require.Equal(t, ferry.RunFailed, r.State, "a storage error is never reported as success")
	require.Contains(t, r.Message, "failover_host")
	require.Contains(t, r.Message, "injected fault")
	require.Contains(t, r.Message, ferry.ReplicationFailoverErr)
	require.Contains(t, r.Flags, ferry.ReplicationFailoverErr)
	require.Equal(t, ferry.StepFailed, stepOf(t, r, workflows.StepFailover).State)
	require.Equal(t, ferry.StepPending, stepOf(t, r, workflows.StepThaw).State)

	ab := simBackend(t, e.state(), "a-block")
	require.Equal(t, ferry.ReplicationFailoverErr, ab.ReplicationStatus)
	require.True(t, ab.Frozen, "a backend whose failover failed stays frozen")
	stored := e.storedBackend("a-block")
	require.Equal(t, ferry.ReplicationFailoverErr, stored.ReplicationStatus)
	require.True(t, stored.Frozen)
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunFailed, rec.State)
	require.Contains(t, rec.Message, ferry.ReplicationFailoverErr)

	// Once the cause is gone, a new run fails the backend over.
	require.NoError(t, e.sim.ClearFaults(e.ctx))
	r = e.result(e.backendFailover("a-block", "site-b"))
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, ferry.ReplicationFailedOver, e.storedBackend("a-block").ReplicationStatus)
}

func TestBackendFailoverFailureBeforeTheStorageRollsBack(t *testing.T) {
	e := newEnv(t)
	before, storedBefore := e.state(), e.storedBackend("a-block")
	// The freeze lands, marking the backend failing-over fails for good.
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.set_replication_status", Kind: drivers.Permanent, Times: 1})
	require.NoError(t, err)
	run := e.backendFailover("a-block", "site-b")
	r := e.result(run)
	recordHistory(t, run, "backend-failover-rolled-back")
	require.Equal(t, ferry.RunRolledBack, r.State, r.Message)
	require.Equal(t, ferry.StepCompensated, stepOf(t, r, workflows.StepFreeze).State)
	require.Equal(t, ferry.StepPending, stepOf(t, r, workflows.StepFailover).State)
	require.Equal(t, before, e.state(), "thawed, replication_status as it was")
	require.Equal(t, storedBefore, e.storedBackend("a-block"))
}

func TestSharePromote(t *testing.T) {
	e := newEnv(t)
	_, err := e.sim.Write(e.ctx, "shop-media", 4)
	require.NoError(t, err)
	run := e.startBackendRun(workflows.GroupWorkflowID("shop"), workflows.SharePromoteWorkflowName,
		workflows.SharePromoteInput{Group: "shop", Share: "shop-media", Target: "site-b", RequestedBy: "pia", MaxAttempts: 2})
	r := e.result(run)
	recordHistory(t, run, "share-promote-completed")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, "shop-media", r.Share)
	require.Equal(t, "shop", r.Group)
	require.Equal(t, "site-b", r.Site)
	require.Equal(t, workflows.SharePromoteSteps(demoGroup(t, "shop")), func() []string {
		var out []string
		for _, s := range r.Steps {
			out = append(out, s.Name)
			require.Equal(t, ferry.StepCompleted, s.State, "step %s: %s", s.Name, s.Error)
		}
		return out
	}())
	require.Zero(t, *r.WritesLost)
	require.NotNil(t, r.RTOSeconds)

	// The chosen replica is active with every write; the old active follows
	// it in_sync, as Manila's replica states say after a promote.
	info, err := e.sim.ResourceInfo(e.ctx, "shop-media")
	require.NoError(t, err)
	require.Equal(t, "site-b", info.ActiveSite)
	require.EqualValues(t, 4, info.ActiveSeq)
	states := map[string]string{}
	for _, rep := range info.Replicas {
		states[rep.Site] = rep.State
	}
	require.Equal(t, map[string]string{"site-a": ferry.ReplicaInSync, "site-b": ferry.ReplicaActive}, states)
	stored, err := e.st.ListReplicas(e.ctx, "shop")
	require.NoError(t, err)
	got := map[string]string{}
	for _, rep := range stored {
		if rep.Resource == "shop-media" {
			got[rep.Site] = rep.State
		}
	}
	require.Equal(t, states, got, "the inventory holds the replica states")
	require.Contains(t, stepOf(t, r, workflows.StepReplicaStates).Note, "site-a (a-files): in_sync")
	// The rest of the group did not move, and the share takes writes at B.
	db, err := e.sim.ResourceInfo(e.ctx, "shop-db-data")
	require.NoError(t, err)
	require.Equal(t, "site-a", db.ActiveSite)
	_, err = e.sim.WriteAt(e.ctx, "shop-media", "site-b", 1)
	require.NoError(t, err)
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, "shop-media", rec.Share)
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
}

func TestSharePromoteFailureBeforePromoteRollsBack(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.promote", Target: "b-files", Kind: drivers.Permanent})
	require.NoError(t, err)
	run := e.startBackendRun(workflows.GroupWorkflowID("shop"), workflows.SharePromoteWorkflowName,
		workflows.SharePromoteInput{Group: "shop", Share: "shop-media", MaxAttempts: 2})
	r := e.result(run)
	require.Equal(t, ferry.RunRolledBack, r.State, r.Message)
	require.Equal(t, ferry.StepCompensated, stepOf(t, r, workflows.StepDemote).State)
	require.Equal(t, before, e.state())
}
