package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
)

const (
	siteC   = "site-c"
	cinderC = "cinder-c"
	// cinderM replicates to two targets: b (cinder-b) and c (cinder-c).
	cinderM   = "cinder-m"
	ledgerVol = "ledger-vol"
)

// twoTargets adds a backend with two replication targets and a group with
// one volume on it (replicated to the first target only).
func twoTargets(t *testing.T, e *env) {
	t.Helper()
	require.NoError(t, e.client.LoadInventory(context.Background(), ferry.Inventory{
		Sites: []ferry.Site{{Name: siteC}},
		Backends: []ferry.Backend{
			{Name: cinderC, Site: siteC, Type: "cinder"},
			{Name: cinderM, Site: siteA, Type: "cinder", ReplicationTargets: []ferry.ReplicationTarget{
				{ID: "b", Backend: cinderB}, {ID: "c", Backend: cinderC},
			}},
		},
		Groups: []ferry.Group{{Name: "ledger", PrimarySite: siteA, DRSite: siteB, RPOSeconds: 60,
			Volumes: []ferry.Volume{{Name: ledgerVol, Backend: cinderM}}}},
	}))
}

func resourceStatus(t *testing.T, st sim.State, name string) string {
	t.Helper()
	for _, r := range st.Resources {
		if r.Name == name {
			return r.Status
		}
	}
	require.FailNow(t, "no resource "+name)
	return ""
}

func TestFailoverHostPromotesReplicatedAndErrorsTheRest(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		require.NoError(t, e.client.CreateVolume(ctx, "scratch", cinderA))
		for _, v := range vols {
			_, err := e.client.Write(ctx, v, 3)
			require.NoError(t, err)
		}
		_, err := e.client.Write(ctx, "scratch", 2)
		require.NoError(t, err)

		res, err := e.client.FailoverHost(ctx, "k1", cinderA, "b")
		require.NoError(t, err)
		require.Equal(t, []string{"scratch"}, res.Errored)
		require.Len(t, res.Promoted, 2)
		for _, p := range res.Promoted {
			require.Contains(t, vols, p.Resource)
			require.EqualValues(t, 3, p.Seq, "a failover from a reachable backend hands over every write")
			require.Zero(t, p.LostWrites)
		}
		for _, v := range vols {
			ri := info(t, e, v)
			require.Equal(t, siteB, ri.ActiveSite)
			require.Empty(t, ri.Status)
			require.Equal(t, ferry.ReplicaInSync, replicaAt(t, ri, siteA).State, "the old primary follows the new active")
		}
		// The share lives on another backend: untouched.
		require.Equal(t, siteA, info(t, e, files).ActiveSite)

		st := stateOf(t, e)
		require.Equal(t, sim.StatusError, resourceStatus(t, st, "scratch"))
		scratch := info(t, e, "scratch")
		require.Equal(t, sim.StatusError, scratch.Status)
		require.Equal(t, ferry.ReplicaError, scratch.Replicas[0].State)
		b := backendState(t, st, cinderA)
		require.Equal(t, "b", b.ActiveBackendID)
		require.Equal(t, ferry.ReplicationFailedOver, b.ReplicationStatus)

		// The same key replays the answer and changes nothing.
		again, err := e.client.FailoverHost(ctx, "k1", cinderA, "b")
		require.NoError(t, err)
		require.Equal(t, res.Errored, again.Errored)
		require.Equal(t, st, stateOf(t, e))
		// A new key is a second failover to the same target: refused.
		_, err = e.client.FailoverHost(ctx, "k2", cinderA, "b")
		requireKind(t, err, drivers.Permanent, "storage.failover_host")
	})
}

func TestFailoverHostForcedWhenTheSiteIsDown(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, v := range vols {
			_, err := e.client.Write(ctx, v, 2)
			require.NoError(t, err)
		}
		require.NoError(t, e.client.SetLag(ctx, cinderA, time.Hour))
		e.clock.Advance(time.Second)
		_, err := e.client.Write(ctx, dbVol, 4)
		require.NoError(t, err)
		require.NoError(t, e.client.SetSiteDown(ctx, siteA, true))

		res, err := e.client.FailoverHost(ctx, "k", cinderA, "b")
		require.NoError(t, err)
		var lost int64
		for _, p := range res.Promoted {
			lost += p.LostWrites
			if p.Resource == dbVol {
				require.EqualValues(t, 2, p.Seq)
				require.Equal(t, time.Second, p.DataLoss)
			}
		}
		require.EqualValues(t, 4, lost)
		require.EqualValues(t, 4, info(t, e, dbVol).LostWrites)

		// The old primary comes back diverged: failing back needs a resync.
		require.NoError(t, e.client.SetSiteDown(ctx, siteA, false))
		require.True(t, replicaAt(t, info(t, e, dbVol), siteA).Diverged)
		before := stateOf(t, e)
		_, err = e.client.FailoverHost(ctx, "back", cinderA, ferry.ActiveBackendDefault)
		de := requireKind(t, err, drivers.Permanent, "storage.failover_host")
		require.Contains(t, de.Error(), "resync")
		require.Equal(t, before, stateOf(t, e), "a refused failback changes nothing")
	})
}

func TestFailoverHostRefusesSecondaryToSecondaryAndUnknownTargets(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		twoTargets(t, e)
		before := stateOf(t, e)
		_, err := e.client.FailoverHost(ctx, "x", cinderM, "nowhere")
		de := requireKind(t, err, drivers.Permanent, "storage.failover_host")
		require.Contains(t, de.Error(), "no replication target")
		_, err = e.client.FailoverHost(ctx, "y", cinderM, ferry.ActiveBackendDefault)
		requireKind(t, err, drivers.Permanent, "storage.failover_host")
		require.Equal(t, before, stateOf(t, e))

		// To c the ledger volume has no replica: it goes to error.
		res, err := e.client.FailoverHost(ctx, "to-c", cinderM, "c")
		require.NoError(t, err)
		require.Equal(t, []string{ledgerVol}, res.Errored)
		require.Empty(t, res.Promoted)

		// From c (a secondary) to b (another one): refused, nothing changes.
		before = stateOf(t, e)
		_, err = e.client.FailoverHost(ctx, "to-b", cinderM, "b")
		de = requireKind(t, err, drivers.Permanent, "storage.failover_host")
		require.Contains(t, de.Error(), "secondary to another")
		require.Equal(t, before, stateOf(t, e))

		// Failing back to default brings the volume back into service.
		_, err = e.client.FailoverHost(ctx, "home", cinderM, ferry.ActiveBackendDefault)
		require.NoError(t, err)
		st := stateOf(t, e)
		require.Empty(t, resourceStatus(t, st, ledgerVol))
		require.Equal(t, "", backendState(t, st, cinderM).ActiveBackendID)
		require.Equal(t, ferry.ReplicationEnabled, backendState(t, st, cinderM).ReplicationStatus)
	})
}

func TestFailbackHandsOverEveryWrite(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.client.FailoverHost(ctx, "out", cinderA, "b")
		require.NoError(t, err)
		_, err = e.client.Write(ctx, dbVol, 5) // written at site-b
		require.NoError(t, err)
		res, err := e.client.FailoverHost(ctx, "home", cinderA, ferry.ActiveBackendDefault)
		require.NoError(t, err)
		require.Len(t, res.Promoted, 2)
		ri := info(t, e, dbVol)
		require.Equal(t, siteA, ri.ActiveSite)
		require.EqualValues(t, 5, ri.ActiveSeq)
		require.Zero(t, ri.LostWrites)
		require.Equal(t, ferry.ReplicaInSync, replicaAt(t, ri, siteB).State)
		b := backendState(t, stateOf(t, e), cinderA)
		require.Empty(t, b.ActiveBackendID)
		require.Equal(t, ferry.ReplicationEnabled, b.ReplicationStatus)
		// Failing back twice is refused: the backend is home.
		_, err = e.client.FailoverHost(ctx, "home-again", cinderA, ferry.ActiveBackendDefault)
		requireKind(t, err, drivers.Permanent, "storage.failover_host")
	})
}

// Cinder's freeze only stopped what went through the scheduler: deletes
// still worked (bug 1616974). Here a frozen backend refuses every change.
func TestFreezeStopsEveryMutationDeletesIncluded(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		clones, err := e.client.TestFailoverStart(ctx, "clone", cinderB, vols)
		require.NoError(t, err)
		require.NoError(t, e.client.Demote(ctx, "demote-b", cinderA, []string{webVol}))
		require.NoError(t, e.client.Freeze(ctx, "freeze-a", cinderA))
		require.NoError(t, e.client.Freeze(ctx, "freeze-b", cinderB))
		before := stateOf(t, e)

		refused := map[string]error{}
		_, refused["storage.snapshot_group"] = e.client.SnapshotGroup(ctx, "1", cinderA, vols)
		_, refused["storage.sync"] = e.client.Sync(ctx, "2", cinderA, vols)
		refused["storage.demote"] = e.client.Demote(ctx, "3", cinderA, []string{dbVol})
		_, refused["storage.promote"] = e.client.Promote(ctx, "4", cinderA, []string{webVol}, false)
		_, refused["storage.resync"] = e.client.Resync(ctx, "5", cinderB, vols)
		_, refused["storage.test_failover_start"] = e.client.TestFailoverStart(ctx, "6", cinderB, vols)
		refused["storage.test_failover_stop"] = e.client.TestFailoverStop(ctx, "7", cinderB, clones)
		for op, err := range refused {
			de := requireKind(t, err, drivers.Permanent, op)
			require.Contains(t, de.Error(), "frozen", op)
		}
		require.Equal(t, before, stateOf(t, e), "a frozen backend changed")

		// What a failover needs still works on a frozen backend.
		require.NoError(t, e.client.SetReplicationStatus(ctx, "8", cinderA, ferry.ReplicationFailingOver, ""))
		require.NoError(t, e.client.FailoverCompleted(ctx, "9", cinderA, "host-a1", "b"))
		require.NoError(t, e.client.Fence(ctx, "10", cinderA, 7))
		require.NoError(t, e.client.Unfence(ctx, "11", cinderA, 7))
		require.NoError(t, e.client.Freeze(ctx, "12", cinderA))

		// Thawed, the delete goes through.
		require.NoError(t, e.client.Thaw(ctx, "thaw-b", cinderB))
		require.NoError(t, e.client.TestFailoverStop(ctx, "7", cinderB, clones))
		require.Empty(t, stateOf(t, e).Clones)

		ledger, err := e.client.Ledger(ctx)
		require.NoError(t, err)
		failed := 0
		for _, l := range ledger {
			if l.Outcome == sim.OutcomeFailed {
				failed++
			}
		}
		require.Equal(t, len(refused), failed, "every refusal is in the ledger")
	})
}
