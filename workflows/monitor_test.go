package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// fakeClock drives the simulator's time, so a test can age unreplicated
// writes by minutes in an instant.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newClockEnv is newEnv with the simulator on a fake clock.
func newClockEnv(t *testing.T, clock *fakeClock) *env {
	t.Helper()
	return newEnvWith(t, sim.Options{Now: clock.Now, BootTime: 20 * time.Millisecond})
}

// startMonitor starts a backend's monitor and terminates it when the test
// ends (monitor ids are global to the dev server).
func (e *env) startMonitor(in workflows.MonitorInput) client.WorkflowRun {
	e.t.Helper()
	run, err := temporalClient.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID: workflows.MonitorWorkflowID(in.Backend), TaskQueue: e.tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.MonitorWorkflowName, in)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = temporalClient.TerminateWorkflow(context.Background(), run.GetID(), "", "test ended") })
	return run
}

// monitorStatus queries the monitor's current run.
func (e *env) monitorStatus(backend string) (workflows.MonitorStatus, bool) {
	v, err := temporalClient.QueryWorkflow(e.ctx, workflows.MonitorWorkflowID(backend), "", workflows.QueryMonitor)
	if err != nil {
		return workflows.MonitorStatus{}, false
	}
	var st workflows.MonitorStatus
	return st, v.Get(&st) == nil
}

// waitTicks waits until the monitor has ticked n more times.
func (e *env) waitTicks(backend string, n int64) workflows.MonitorStatus {
	e.t.Helper()
	st, _ := e.monitorStatus(backend)
	from := st.Tick
	require.Eventually(e.t, func() bool {
		st, _ = e.monitorStatus(backend)
		return st.Tick >= from+n
	}, 30*time.Second, 50*time.Millisecond, "monitor of %s stopped ticking", backend)
	return st
}

func (e *env) events(group string) []ferry.ReplicationEvent {
	e.t.Helper()
	evs, err := e.st.ListEvents(e.ctx, group, 0)
	require.NoError(e.t, err)
	return evs
}

// eventsOf filters events of one replica, oldest first.
func eventsOf(evs []ferry.ReplicationEvent, resource, site string) []ferry.ReplicationEvent {
	var out []ferry.ReplicationEvent
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Resource == resource && evs[i].Site == site {
			out = append(out, evs[i])
		}
	}
	return out
}

func severities(evs []ferry.ReplicationEvent) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Severity)
	}
	return out
}

func (e *env) waitSeverities(group, resource, site string, want ...string) []ferry.ReplicationEvent {
	e.t.Helper()
	var got []ferry.ReplicationEvent
	require.Eventually(e.t, func() bool {
		got = eventsOf(e.events(group), resource, site)
		return len(got) >= len(want)
	}, 30*time.Second, 50*time.Millisecond, "events of %s@%s never reached %v", resource, site, want)
	require.Equal(e.t, want, severities(got))
	return got
}

func replicaIn(st workflows.MonitorStatus, resource, site string) (workflows.MonitoredReplica, bool) {
	for _, r := range st.Replicas {
		if r.Resource == resource && r.Site == site {
			return r, true
		}
	}
	return workflows.MonitoredReplica{}, false
}

func TestMonitorRaisesRPOEventsOnTransitionsAndContinuesAsNew(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	e := newClockEnv(t, clock)
	// Replication from a-block stalls; shop-db-data (RPO 30s) gets a write
	// that stays unreplicated. crm-db-data's replication is suspended for
	// maintenance and falls behind on purpose.
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", time.Hour))
	require.NoError(t, e.sim.SuspendReplication(e.ctx, "test/suspend", "a-block", []string{"crm-db-data"}))
	_, err := e.sim.Write(e.ctx, "shop-db-data", 1)
	require.NoError(t, err)
	_, err = e.sim.Write(e.ctx, "crm-db-data", 1)
	require.NoError(t, err)

	// Few ticks per run, so the monitor continues as new several times.
	run := e.startMonitor(workflows.MonitorInput{Backend: "b-block", Interval: 150 * time.Millisecond, MaxTicks: 3})
	st := e.waitTicks("b-block", 1)
	r, ok := replicaIn(st, "shop-db-data", "site-b")
	require.True(t, ok, "the DR replica on b-block is watched: %+v", st.Replicas)
	require.True(t, r.Watched)
	require.Equal(t, workflows.LevelOK, r.Level)
	active, ok := replicaIn(st, "shop-db-data", "site-a")
	require.True(t, ok, "every replica of a resource with a copy on the backend is observed")
	require.False(t, active.Watched, "the active replica is not judged")

	clock.Advance(70 * time.Second) // lag 70s > 2x30s
	warn := e.waitSeverities("shop", "shop-db-data", "site-b", ferry.SeverityWarning)
	require.Equal(t, 30, warn[0].RPOSeconds)
	require.GreaterOrEqual(t, warn[0].LagSeconds, 60.0)
	require.Equal(t, "b-block", warn[0].Backend)
	require.Contains(t, warn[0].Message, "2x")

	clock.Advance(30 * time.Second) // lag 100s > 3x30s
	e.waitSeverities("shop", "shop-db-data", "site-b", ferry.SeverityWarning, ferry.SeverityCritical)

	// Ticks go by, across continue-as-new: no repeated events, the level
	// is carried over.
	st = e.waitTicks("b-block", 8)
	require.Greater(t, st.Runs, 2, "the monitor continued as new")
	require.Equal(t, []string{ferry.SeverityWarning, ferry.SeverityCritical},
		severities(eventsOf(e.events("shop"), "shop-db-data", "site-b")), "events mark transitions, not ticks")
	r, _ = replicaIn(st, "shop-db-data", "site-b")
	require.Equal(t, workflows.LevelCritical, r.Level)

	// The suspended replica's lag is reported, and raises nothing.
	crm, ok := replicaIn(st, "crm-db-data", "site-b")
	require.True(t, ok)
	require.True(t, crm.Suspended)
	require.Equal(t, workflows.LevelSuspended, crm.Level)
	require.GreaterOrEqual(t, crm.LagSeconds, 100.0)
	require.Empty(t, e.events("crm"), "a suspended replica raises no RPO violation")

	// The stored replicas show the lag too (GET /v1/groups/shop/replication).
	reps, err := e.st.ListReplicas(e.ctx, "shop")
	require.NoError(t, err)
	var stored ferry.Replica
	for _, rep := range reps {
		if rep.Resource == "shop-db-data" && rep.Site == "site-b" {
			stored = rep
		}
	}
	require.GreaterOrEqual(t, stored.LagSecs, 90.0)

	// Replication catches up: resolved, once.
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", 0))
	e.waitSeverities("shop", "shop-db-data", "site-b", ferry.SeverityWarning, ferry.SeverityCritical, ferry.SeverityResolved)
	e.waitTicks("b-block", 3)
	require.Len(t, eventsOf(e.events("shop"), "shop-db-data", "site-b"), 3)
	require.Empty(t, e.events("crm"))

	// Pause stops the ticks; resume restarts them at once.
	require.NoError(t, e.steerMonitor("b-block", workflows.UpdatePause))
	require.Error(t, e.steerMonitor("b-block", workflows.UpdatePause), "already paused")
	paused, _ := e.monitorStatus("b-block")
	require.True(t, paused.Paused)
	require.NoError(t, e.steerMonitor("b-block", workflows.UpdateResume))
	e.waitTicks("b-block", 2)

	// The first run ended in continue-as-new: its history replays.
	recordHistory(t, run, "monitor-continue-as-new")
}

func (e *env) steerMonitor(backend, update string) error {
	h, err := temporalClient.UpdateWorkflow(e.ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.MonitorWorkflowID(backend), UpdateName: update,
		Args: []any{workflows.SteerRequest{By: "sre"}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(e.ctx, nil)
}

func TestMonitorRepairsBrokenRelationshipButNotAFencedOne(t *testing.T) {
	e := newEnv(t)
	e.addInventory(ferry.Inventory{Backends: backendPair("x"), Groups: []ferry.Group{smallGroup("xg", 1, "a-x", 60)}})

	// A forced promote at site-b while site-a was cut off from it leaves
	// crm-app-root's site-a replica diverged (in error) with 2 writes
	// nobody replicated: a broken relationship, on an unfenced backend.
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", time.Hour))
	_, err := e.sim.Write(e.ctx, "crm-app-root", 2)
	require.NoError(t, err)
	_, err = e.sim.Promote(e.ctx, "test/force-promote", "b-block", []string{"crm-app-root"}, true)
	require.NoError(t, err)
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", 0))
	// The same on a-x, but a-x is fenced: what its writes become is
	// reprotect's decision, not the monitor's.
	_, err = e.sim.Write(e.ctx, "xg-data", 1)
	require.NoError(t, err)
	require.NoError(t, e.sim.SetLag(e.ctx, "a-x", time.Hour))
	_, err = e.sim.Write(e.ctx, "xg-data", 1)
	require.NoError(t, err)
	_, err = e.sim.Promote(e.ctx, "test/force-promote-x", "b-x", []string{"xg-data"}, true)
	require.NoError(t, err)
	require.NoError(t, e.sim.Fence(e.ctx, "test/fence-x", "a-x", 1))

	// The system starts a monitor per backend; a second call leaves them be.
	require.NoError(t, worker.EnsureMonitors(e.ctx, temporalClient, e.st, e.tq, 150*time.Millisecond))
	backends, _, err := e.st.ListBackends(e.ctx, ferry.Page{})
	require.NoError(t, err)
	require.Len(t, backends, 6)
	runIDs := map[string]string{}
	for _, b := range backends {
		id := workflows.MonitorWorkflowID(b.Name)
		e.t.Cleanup(func() { _ = temporalClient.TerminateWorkflow(context.Background(), id, "", "test ended") })
		d, err := temporalClient.DescribeWorkflowExecution(e.ctx, id, "")
		require.NoError(t, err, b.Name)
		runIDs[b.Name] = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	require.NoError(t, worker.EnsureMonitors(e.ctx, temporalClient, e.st, e.tq, 150*time.Millisecond))
	for name, id := range runIDs {
		d, err := temporalClient.DescribeWorkflowExecution(e.ctx, workflows.MonitorWorkflowID(name), "")
		require.NoError(t, err)
		require.Equal(t, id, d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "a running monitor is left alone")
	}

	evs := e.waitSeverities("crm", "crm-app-root", "site-a", ferry.SeverityResolved)
	require.Contains(t, evs[0].Message, "repaired")
	require.Contains(t, evs[0].Message, "2 writes discarded")
	info, err := e.sim.ResourceInfo(e.ctx, "crm-app-root")
	require.NoError(t, err)
	require.EqualValues(t, 2, info.DiscardedWrites)
	for _, rep := range info.Replicas {
		require.False(t, rep.Diverged, rep.Site)
	}
	st := e.waitTicks("a-block", 2)
	r, ok := replicaIn(st, "crm-app-root", "site-a")
	require.True(t, ok)
	require.Equal(t, ferry.ReplicaInSync, r.State)
	require.Equal(t, workflows.LevelOK, r.Level)

	x := e.waitSeverities("xg", "xg-data", "site-a", ferry.SeverityCritical)
	require.Contains(t, x[0].Message, "fenced")
	info, err = e.sim.ResourceInfo(e.ctx, "xg-data")
	require.NoError(t, err)
	require.Zero(t, info.DiscardedWrites)

	// Each repair happened once, under the monitor's per-tick key; the
	// fenced backend was never resynced.
	e.waitTicks("a-x", 2)
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)
	resyncs := 0
	for _, l := range ledger {
		if l.Op == "storage.resync" {
			require.NotEqual(t, "a-x", l.Target)
			require.Contains(t, l.Key, "repair#")
			resyncs++
		}
	}
	require.Equal(t, 1, resyncs)
	require.Len(t, eventsOf(e.events("crm"), "crm-app-root", "site-a"), 1)
	require.Len(t, eventsOf(e.events("xg"), "xg-data", "site-a"), 1, "the fenced replica's violation is raised once")

	id := workflows.MonitorWorkflowID("a-block")
	require.NoError(t, temporalClient.TerminateWorkflow(e.ctx, id, "", "recorded"))
	recordHistory(t, temporalClient.GetWorkflow(e.ctx, id, ""), "monitor-repair")
}
