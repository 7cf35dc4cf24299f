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

func statusAt(t *testing.T, e *env, res, site string) drivers.ReplicaStatus {
	t.Helper()
	rs, err := e.client.ReplicationStatus(context.Background(), []string{res})
	require.NoError(t, err)
	for _, r := range rs {
		if r.Site == site {
			return r
		}
	}
	require.FailNow(t, "no replica of "+res+" at "+site)
	return drivers.ReplicaStatus{}
}

func TestDisableAndEnableReplication(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.client.Write(ctx, dbVol, 4)
		require.NoError(t, err)

		// The active replica cannot be removed.
		requireKind(t, e.client.DisableReplication(ctx, "k-active", cinderA, vols), drivers.Permanent, "storage.disable_replication")
		require.NoError(t, e.client.DisableReplication(ctx, "k-off", cinderB, vols))
		require.Len(t, info(t, e, dbVol).Replicas, 1)
		require.Len(t, info(t, e, webVol).Replicas, 1)
		// Again, under a new key: nothing left to remove, nothing fails.
		require.NoError(t, e.client.DisableReplication(ctx, "k-off-2", cinderB, vols))
		// The active keeps taking writes.
		_, err = e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)

		// Only to a configured replication target, only from the active.
		requireKind(t, e.client.EnableReplication(ctx, "k-bad", cinderA, manilaB, vols), drivers.Permanent, "storage.enable_replication")
		requireKind(t, e.client.EnableReplication(ctx, "k-bad-2", cinderB, cinderA, vols), drivers.Permanent, "storage.enable_replication")
		require.Len(t, info(t, e, dbVol).Replicas, 1, "a refused call changes nothing")

		// A new replica fills per the link's lag.
		require.NoError(t, e.client.SetLag(ctx, cinderA, 10*time.Second))
		require.NoError(t, e.client.EnableReplication(ctx, "k-on", cinderA, cinderB, vols))
		require.NoError(t, e.client.EnableReplication(ctx, "k-on", cinderA, cinderB, vols)) // replayed
		ri := info(t, e, dbVol)
		require.Len(t, ri.Replicas, 2)
		require.EqualValues(t, 5, ri.ActiveSeq)
		e.clock.Advance(11 * time.Second)
		require.EqualValues(t, 5, replicaAt(t, info(t, e, dbVol), siteB).Seq)
		require.Equal(t, ferry.ReplicaInSync, statusAt(t, e, dbVol, siteB).State)

		// Enabling where a replica exists leaves it as it is.
		require.NoError(t, e.client.EnableReplication(ctx, "k-on-2", cinderA, cinderB, vols))
		require.Len(t, info(t, e, dbVol).Replicas, 2)

		ledger, err := e.client.Ledger(ctx)
		require.NoError(t, err)
		applied := 0
		for _, l := range ledger {
			if l.Key == "k-on" && l.Outcome == sim.OutcomeApplied {
				applied++
			}
		}
		require.Equal(t, 1, applied)
	})
}

func TestSuspendAndResumeReplication(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.client.Write(ctx, dbVol, 2)
		require.NoError(t, err)
		requireKind(t, e.client.SuspendReplication(ctx, "k-wrong", cinderB, vols), drivers.Permanent, "storage.suspend_replication")
		require.NoError(t, e.client.SuspendReplication(ctx, "k-susp", cinderA, vols))

		_, err = e.client.Write(ctx, dbVol, 3)
		require.NoError(t, err)
		e.clock.Advance(30 * time.Second)
		st := statusAt(t, e, dbVol, siteB)
		require.True(t, st.Suspended)
		require.EqualValues(t, 2, st.Seq, "a suspended secondary applies nothing")
		require.Equal(t, 30*time.Second, st.Lag)
		require.Equal(t, ferry.ReplicaInSync, st.State)
		require.False(t, statusAt(t, e, dbVol, siteA).Suspended, "the active is not suspended")

		// The lag keeps growing past the RPO: out_of_sync, as the lag says.
		e.clock.Advance(31 * time.Second)
		st = statusAt(t, e, dbVol, siteB)
		require.Equal(t, ferry.ReplicaOutOfSync, st.State)
		require.EqualValues(t, 2, replicaAt(t, info(t, e, dbVol), siteB).Seq)

		// Resume: the secondary catches up per the lag model (lag 0 here).
		require.NoError(t, e.client.ResumeReplication(ctx, "k-res", cinderA, vols))
		st = statusAt(t, e, dbVol, siteB)
		require.False(t, st.Suspended)
		require.EqualValues(t, 5, st.Seq)
		require.Equal(t, ferry.ReplicaInSync, st.State)

		// With a lag, resuming applies only what is old enough.
		require.NoError(t, e.client.SetLag(ctx, cinderA, 10*time.Second))
		require.NoError(t, e.client.SuspendReplication(ctx, "k-susp-2", cinderA, vols))
		_, err = e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)
		e.clock.Advance(20 * time.Second)
		require.EqualValues(t, 5, statusAt(t, e, dbVol, siteB).Seq)
		require.NoError(t, e.client.ResumeReplication(ctx, "k-res-2", cinderA, vols))
		_, err = e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)
		require.EqualValues(t, 6, statusAt(t, e, dbVol, siteB).Seq, "the 20s-old write applies, the new one waits")
		e.clock.Advance(10 * time.Second)
		require.EqualValues(t, 7, statusAt(t, e, dbVol, siteB).Seq)
	})
}
