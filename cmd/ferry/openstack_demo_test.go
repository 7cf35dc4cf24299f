package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// TestOpenStackDemo is `ferry dev --openstack` without the API: the demo's
// runs through the OpenStack adapter — gophercloud's requests to the
// simulator's Cinder, Manila, Nova, Neutron and Designate facades (simulated
// clouds, not real OpenStack) — on a real Temporal dev server. A
// planned failover of shop (volumes in a Cinder group, a Manila share,
// three boot tiers, DNS) completes, and the simulator's own state shows
// what it did; a drill is refused before it makes anything (Cinder copies
// only where a group is active); an unplanned failover of crm rolls back at
// the fence, which Cinder cannot do, saying so, and completes when the
// operator states an out-of-band fence.
func TestOpenStackDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tc := devserver.Start(t).Client()
	st := storetest.New(t)
	inv := demo.Inventory()
	require.NoError(t, st.ApplyInventory(ctx, inv))
	cloud := sim.NewCloud(sim.Options{BootTime: 20 * time.Millisecond})
	require.NoError(t, cloud.LoadInventory(inv))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: sim.NewHandler(cloud)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	dataDir := t.TempDir()
	base := sim.NewInProcess(cloud).Set()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	set, err := (&openstackDemoOptions{}).wire(dataDir, ln.Addr().String(), inv, base, quiet)
	require.NoError(t, err)
	require.Same(t, base.Storage, set.Storage, "off: the simulator's own drivers")
	set, err = (&openstackDemoOptions{enabled: true}).wire(dataDir, ln.Addr().String(), inv, base, quiet)
	require.NoError(t, err)
	require.NotSame(t, base.Storage, set.Storage)
	cfgText, err := os.ReadFile(filepath.Join(dataDir, "openstack", "openstack.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(cfgText), "clouds_file:")

	tq := "openstack-demo"
	w := worker.New(tc, tq, &activities.Activities{Drivers: set, Store: st}, worker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	start := func(name, id string, in any) client.WorkflowRun {
		t.Helper()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: tq,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		}, name, in)
		require.NoError(t, err)
		return run
	}
	finish := func(run client.WorkflowRun) ferry.Run {
		t.Helper()
		var r ferry.Run
		require.NoError(t, run.Get(ctx, &r))
		return r
	}
	// Every side effect reached the simulator through a facade: the
	// adapter has no other way to it.
	facadeCalls := func() (facade, direct int) {
		t.Helper()
		for _, e := range cloud.Ledger() {
			if e.Outcome != sim.OutcomeApplied {
				continue
			}
			// The facades call the simulator under "facade/..." keys, or
			// none (Nova's and Neutron's APIs carry none); Ferry's own
			// activities always send one.
			if e.Key == "" || strings.HasPrefix(e.Key, "facade/") {
				facade++
			} else {
				direct++
			}
		}
		return facade, direct
	}
	activeSite := func(res string) string {
		t.Helper()
		info, err := cloud.ResourceInfo(res)
		require.NoError(t, err)
		return info.ActiveSite
	}
	serverState := func(site, name string) string {
		for _, sv := range cloud.State().Servers {
			if sv.Site == site && sv.Name == name {
				return sv.State
			}
		}
		return drivers.ServerAbsent
	}

	// A drill of shop at site-b: Cinder copies a group snapshot onto the
	// array the group is active on (site-a's), so the adapter refuses
	// before anything is made, and the drill leaves the cloud as it was.
	before := cloud.State()
	r := finish(start(workflows.DrillWorkflowName, workflows.DrillScheduledWorkflowID("shop")+"-test", workflows.DrillInput{Group: "shop", MaxAttempts: 2}))
	require.NotEqual(t, ferry.RunCompleted, r.State)
	require.Contains(t, r.Message, "Cinder has no call that copies a replica at its replication target")
	after := cloud.State()
	require.Empty(t, after.Bubbles, "the drill left a bubble")
	require.Empty(t, after.Clones, "the drill left clones")
	require.Equal(t, before.Resources, after.Resources)
	_, direct := facadeCalls()
	require.Zero(t, direct, "nothing reached the simulator around the facades")

	// A planned failover of shop. (Its failback would wait at
	// wait_in_sync: Cinder reports a failed-over group's primary copy as
	// receiving nothing, and leaves the way back to the driver's failback;
	// docs/openstack.md.)
	r = finish(start(workflows.FailoverWorkflowName, workflows.GroupWorkflowID("shop"), workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned, SkipApproval: true, MaxAttempts: 2}))
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	for _, res := range []string{"shop-db-data", "shop-media"} {
		require.Equal(t, "site-b", activeSite(res), res)
	}
	require.Equal(t, drivers.ServerRunning, serverState("site-b", "shop-db-1"))
	rec, err := cloud.Get(ctx, "shop.demo.example", "A")
	require.NoError(t, err)
	require.Equal(t, "10.2.0.10", rec.Value)

	// An unplanned failover of crm: Cinder has no fence, so the run stops
	// before it promotes anything and rolls back, saying what to do; run
	// again with the operator's out-of-band fence stated, it completes and
	// records the statement.
	r = finish(start(workflows.FailoverWorkflowName, workflows.GroupWorkflowID("crm"), workflows.FailoverInput{Group: "crm", Mode: ferry.ModeUnplanned, SkipApproval: true, MaxAttempts: 1}))
	require.Equal(t, ferry.RunRolledBack, r.State, r.Message)
	require.Contains(t, r.Message, "Cinder cannot fence a-block")
	require.Contains(t, r.Message, "--fenced-out-of-band")
	require.Equal(t, "site-a", activeSite("crm-db-data"), "nothing was promoted")
	r = finish(start(workflows.FailoverWorkflowName, workflows.GroupWorkflowID("crm"), workflows.FailoverInput{Group: "crm", Mode: ferry.ModeUnplanned, SkipApproval: true, MaxAttempts: 1, RequestedBy: "alice", FencedOutOfBand: "site-a array powered off"}))
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	require.Contains(t, r.Flags, "fenced-out-of-band")
	var fence ferry.Step
	for _, st := range r.Steps {
		if st.Name == workflows.StepFence {
			fence = st
		}
	}
	require.Equal(t, "fenced out of band, as alice stated: site-a array powered off", fence.Note)
	require.Equal(t, "site-b", activeSite("crm-db-data"))

	_, direct = facadeCalls()
	require.Zero(t, direct, "nothing reached the simulator around the facades")
}
