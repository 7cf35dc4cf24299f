package workflows_test

import (
	"context"
	"regexp"
	"sort"
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

// startEvacuation starts an evacuation under its site's workflow id and
// terminates whatever it left running (its children are abandoned on
// purpose, so they are terminated too) when the test ends.
func (e *env) startEvacuation(in workflows.EvacuateInput) client.WorkflowRun {
	e.t.Helper()
	if in.MaxAttempts == 0 {
		in.MaxAttempts = 2
	}
	run, err := temporalClient.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID:                       workflows.EvacuateWorkflowID(in.Site),
		TaskQueue:                e.tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.EvacuateWorkflowName, in)
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		ctx := context.Background()
		_ = temporalClient.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "test ended")
		inv, _, err := e.st.ListGroups(ctx, ferry.Page{Limit: 1000})
		if err == nil {
			for _, g := range inv {
				_ = temporalClient.TerminateWorkflow(ctx, workflows.GroupWorkflowID(g.Name), "", "test ended")
			}
		}
	})
	return run
}

// addInventory adds to both the store and the simulated cloud.
func (e *env) addInventory(inv ferry.Inventory) {
	e.t.Helper()
	require.NoError(e.t, e.st.ApplyInventory(e.ctx, inv))
	require.NoError(e.t, e.cloud.LoadInventory(inv))
}

// backendPair is a replicated pair of backends, site-a -> site-b.
func backendPair(name string) []ferry.Backend {
	return []ferry.Backend{
		{Name: "a-" + name, Site: "site-a", Type: "cinder",
			ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "b-" + name}}},
		{Name: "b-" + name, Site: "site-b", Type: "cinder",
			ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-a", Backend: "a-" + name}}},
	}
}

// smallGroup is a one-volume, one-server group at site-a.
func smallGroup(name string, priority int, backend string, rpo int) ferry.Group {
	return ferry.Group{
		Name: name, Project: "test", PrimarySite: "site-a", DRSite: "site-b", RPOSeconds: rpo,
		Consistency: ferry.ConsistencyCrash, QuiescePolicy: ferry.QuiesceAbort, Priority: priority,
		Volumes: []ferry.Volume{{Name: name + "-data", Backend: backend, SizeGB: 10}},
		Tiers:   []ferry.Tier{{Name: "app", Servers: []ferry.Server{{Name: name + "-1", Volumes: []string{name + "-data"}}}}},
	}
}

var epochRE = regexp.MustCompile(`epoch \d+`)

func childOf(t *testing.T, r ferry.Run, group string) ferry.ChildRun {
	t.Helper()
	for _, c := range r.Children {
		if c.Group == group {
			return c
		}
	}
	t.Fatalf("evacuation has no child for group %s: %+v", group, r.Children)
	return ferry.ChildRun{}
}

func TestEvacuatePlannedPriorityWindowAndOneFailure(t *testing.T) {
	e := newEnv(t)
	// Three more groups: pay on its own backend pair, whose promote fails
	// for good; wiki (same priority as crm: name breaks the tie) and blog
	// on another pair.
	e.addInventory(ferry.Inventory{
		Backends: append(backendPair("pay"), backendPair("misc")...),
		Groups: []ferry.Group{
			smallGroup("pay", 30, "a-pay", 60),
			smallGroup("wiki", 10, "a-misc", 60),
			smallGroup("blog", 5, "a-misc", 60),
		},
	})
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.promote", Target: "b-pay", Kind: drivers.Permanent})
	require.NoError(t, err)
	// Slow the final sync a little so the window is observably full.
	_, err = e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.sync", Latency: 300 * time.Millisecond})
	require.NoError(t, err)

	run := e.startEvacuation(workflows.EvacuateInput{Site: "site-a", Mode: ferry.ModePlanned, Concurrency: 2, RequestedBy: "ops"})
	// crm's policy asks for approval: the evacuation asks once, for all.
	p := e.waitState(run, ferry.RunWaitingApproval)
	require.Contains(t, stepOf(t, p, workflows.StepApproval).Note, "crm")
	order := []string{"pay", "shop", "crm", "wiki", "blog"}
	require.Len(t, p.Children, len(order))
	for i, c := range p.Children {
		require.Equal(t, order[i], c.Group, "highest priority first, ties by name")
		require.Equal(t, ferry.RunPending, c.State)
	}
	require.NoError(t, e.steer(run, workflows.UpdateApprove, "boss"))

	// The table is live: a child shows as running with its run id.
	require.Eventually(t, func() bool {
		for _, c := range e.progress(run).Children {
			if c.State == ferry.RunRunning && c.RunID != "" {
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond)

	r := e.result(run)
	recordHistory(t, run, "evacuate-planned-partial")
	require.Equal(t, ferry.RunFailed, r.State, r.Message)
	require.Contains(t, r.Message, "1 of 5 groups not failed over: pay (rolled_back)")
	require.Contains(t, r.Flags, "partial")
	require.Len(t, r.Children, 5)
	pay := childOf(t, r, "pay")
	require.Equal(t, ferry.RunRolledBack, pay.State)
	require.Contains(t, pay.Message, "promote")
	require.Equal(t, 30, pay.Priority)
	require.Equal(t, ferry.StepFailed, stepOf(t, r, workflows.EvacuateStep("pay")).State)
	for _, g := range []string{"shop", "crm", "wiki", "blog"} {
		c := childOf(t, r, g)
		require.Equal(t, ferry.RunCompleted, c.State, "%s: %s", g, c.Message)
		require.NotEmpty(t, c.RunID)
		require.Equal(t, workflows.GroupWorkflowID(g), c.WorkflowID)
		require.NotNil(t, c.RTOSeconds, g)
		require.NotNil(t, c.WritesLost, g)
		require.Zero(t, *c.WritesLost, g)
		require.Equal(t, ferry.StepCompleted, stepOf(t, r, workflows.EvacuateStep(g)).State)
	}
	require.NotNil(t, r.RTOSeconds)
	for _, c := range r.Children {
		if c.RTOSeconds != nil {
			require.GreaterOrEqual(t, *r.RTOSeconds, *c.RTOSeconds, "the evacuation's RTO runs until the last group is verified")
		}
	}

	// Start order: by priority, from the evacuation's own step starts.
	for i := 1; i < len(order); i++ {
		prev, cur := stepOf(t, r, workflows.EvacuateStep(order[i-1])), stepOf(t, r, workflows.EvacuateStep(order[i]))
		require.False(t, cur.Started.Before(*prev.Started), "%s started before %s", order[i], order[i-1])
	}
	// Never more than two at once, from the children's own records; and
	// the window was used (two at once at some point).
	type span struct{ from, to time.Time }
	var spans []span
	for _, c := range r.Children {
		rec, err := e.st.GetRun(e.ctx, c.RunID)
		require.NoError(t, err, c.Group)
		require.Equal(t, c.State, rec.State, c.Group)
		require.NotNil(t, rec.Ended, c.Group)
		spans = append(spans, span{rec.Created, *rec.Ended})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from.Before(spans[j].from) })
	most := 0
	for _, s := range spans {
		n := 0
		for _, o := range spans {
			if !o.from.After(s.from) && o.to.After(s.from) {
				n++
			}
		}
		most = max(most, n)
	}
	require.Equal(t, 2, most, "at most Concurrency children at once, and the window filled")

	// The cloud agrees: every group but pay runs at site-b; pay stayed home.
	for _, g := range []string{"shop", "crm", "wiki", "blog"} {
		grp, err := e.st.GetGroup(e.ctx, g)
		require.NoError(t, err)
		require.Equal(t, "site-b", grp.ActiveSite, g)
	}
	info, err := e.sim.ResourceInfo(e.ctx, "pay-data")
	require.NoError(t, err)
	require.Equal(t, "site-a", info.ActiveSite)
	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	requireExactlyOnce(t, ledger)

	// The record in PostgreSQL holds the whole table.
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, ferry.RunFailed, rec.State)
	require.Equal(t, r.Children, rec.Children)
	require.Equal(t, "boss", rec.Approvals[0].By)
}

func TestEvacuateUnplannedSiteDown(t *testing.T) {
	e := newEnv(t)
	for _, g := range []string{"shop", "crm"} {
		for _, r := range groupResources(demoGroup(t, g)) {
			_, err := e.sim.Write(e.ctx, r, 2)
			require.NoError(t, err)
		}
	}
	require.NoError(t, e.sim.SetLag(e.ctx, "a-block", time.Hour))
	_, err := e.sim.Write(e.ctx, "shop-db-data", 3)
	require.NoError(t, err)
	_, err = e.sim.Write(e.ctx, "crm-db-data", 4)
	require.NoError(t, err)
	require.NoError(t, e.sim.SetSiteDown(e.ctx, "site-a", true))

	// crm's policy does not ask for approval of unplanned runs.
	run := e.startEvacuation(workflows.EvacuateInput{Site: "site-a", Mode: ferry.ModeUnplanned})
	r := e.result(run)
	recordHistory(t, run, "evacuate-unplanned")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Equal(t, ferry.StepSkipped, stepOf(t, r, workflows.StepApproval).State)
	require.Equal(t, []string{"shop", "crm"}, []string{r.Children[0].Group, r.Children[1].Group})

	var truth int64
	for _, g := range []string{"shop", "crm"} {
		c := childOf(t, r, g)
		require.Equal(t, ferry.RunCompleted, c.State, c.Message)
		child, err := e.st.GetRun(e.ctx, c.RunID)
		require.NoError(t, err)
		require.Equal(t, ferry.ModeUnplanned, child.Mode)
		// Both groups fenced the shared backends under the evacuation's one
		// epoch.
		childEpoch := epochRE.FindString(stepOf(t, child, workflows.StepFence).Note)
		require.NotEmpty(t, childEpoch)
		require.Equal(t, epochRE.FindString(stepOf(t, r, workflows.StepPrecheck).Note), childEpoch)
		for _, res := range groupResources(demoGroup(t, g)) {
			info, err := e.sim.ResourceInfo(e.ctx, res)
			require.NoError(t, err)
			require.Equal(t, "site-b", info.ActiveSite, res)
			truth += info.LostWrites
		}
	}
	require.EqualValues(t, 7, truth)
	require.NotNil(t, r.WritesLost)
	require.Equal(t, truth, *r.WritesLost, "the evacuation adds up exactly what its groups lost")
	require.NotNil(t, r.RPOSeconds)
	require.Greater(t, *r.RPOSeconds, 0.0)
	require.NotNil(t, r.RTOSeconds)

	// Invariant 1 holds for the whole site: the old primary takes no write.
	require.NoError(t, e.sim.SetSiteDown(e.ctx, "site-a", false))
	_, err = e.sim.WriteAt(e.ctx, "crm-db-data", "site-a", 1)
	require.Error(t, err)
}

func TestEvacuateReportsABusyGroupAsAConflict(t *testing.T) {
	e := newEnv(t)
	// crm's own failover waits for approval, holding crm's lock.
	busy := e.start(workflows.FailoverInput{Group: "crm", Mode: ferry.ModePlanned})
	e.waitState(busy, ferry.RunWaitingApproval)

	run := e.startEvacuation(workflows.EvacuateInput{Site: "site-a", Mode: ferry.ModePlanned, SkipApproval: true})
	r := e.result(run)
	require.Equal(t, ferry.RunFailed, r.State)
	crm := childOf(t, r, "crm")
	require.Equal(t, ferry.RunFailed, crm.State)
	require.Contains(t, crm.Message, "conflict")
	require.Contains(t, crm.Message, "already has a running run")
	require.Contains(t, r.Flags, "conflict:crm")
	require.Equal(t, ferry.RunCompleted, childOf(t, r, "shop").State)
	// The busy run is untouched.
	require.Equal(t, ferry.RunWaitingApproval, e.progress(busy).State)
}

func TestEvacuateAbortCancelsRunningAndStartsNoMore(t *testing.T) {
	e := newEnv(t)
	before := e.state()
	_, err := e.sim.InjectFault(e.ctx, sim.Fault{Op: "storage.snapshot_group", Latency: 20 * time.Second})
	require.NoError(t, err)
	run := e.startEvacuation(workflows.EvacuateInput{Site: "site-a", Mode: ferry.ModePlanned, Concurrency: 1, SkipApproval: true})
	e.waitStepState(run, workflows.EvacuateStep("shop"), ferry.StepRunning)
	require.Eventually(t, func() bool {
		c, err := temporalClient.QueryWorkflow(e.ctx, workflows.GroupWorkflowID("shop"), "", workflows.QueryProgress)
		if err != nil {
			return false
		}
		var child ferry.Run
		if c.Get(&child) != nil {
			return false
		}
		for _, s := range child.Steps {
			if s.Name == workflows.StepSnapshot {
				return s.State == ferry.StepRunning
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond)
	require.NoError(t, e.steer(run, workflows.UpdateAbort, "ops"))

	r := e.result(run)
	recordHistory(t, run, "evacuate-abort")
	require.Equal(t, ferry.RunAborted, r.State)
	shop := childOf(t, r, "shop")
	require.Equal(t, ferry.RunAborted, shop.State, shop.Message)
	require.Contains(t, shop.Message, "rolled back")
	crm := childOf(t, r, "crm")
	require.Equal(t, ferry.RunAborted, crm.State)
	require.Contains(t, crm.Message, "not started")
	require.Empty(t, crm.RunID)
	require.Equal(t, ferry.StepSkipped, stepOf(t, r, workflows.EvacuateStep("crm")).State)
	require.NoError(t, e.sim.ClearFaults(e.ctx))
	require.Eventually(t, func() bool { return assertEqualState(before, e.state()) }, 5*time.Second, 50*time.Millisecond,
		"the aborted evacuation left production as it was")
}

func (e *env) waitStepState(run client.WorkflowRun, step, want string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		for _, s := range e.progress(run).Steps {
			if s.Name == step {
				return s.State == want
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "step %s never reached %s", step, want)
}
