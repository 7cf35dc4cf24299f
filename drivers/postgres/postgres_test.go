package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/postgres"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var res = []string{postgres.TestCluster}

// A row written before a planned failover is read back with SQL from the
// new primary, which takes writes; the old primary refuses them.
func TestPlannedFailoverKeepsTheRow(t *testing.T) {
	ctx := ctxT(t)
	tp := postgres.NewTestPair(t)
	a, p, s := tp.Adapter, tp.Primary, tp.Standby
	row, err := tp.WriteRow(ctx, p.Site)
	require.NoError(t, err)

	_, err = a.Sync(ctx, "t/sync", p.Name, res)
	require.NoError(t, err)
	require.NoError(t, a.Demote(ctx, "t/demote", p.Name, res))
	pr, err := a.Promote(ctx, "t/promote", s.Name, res, false)
	require.NoError(t, err)
	require.Equal(t, int64(0), pr.Points[0].LostWrites, "a planned failover loses nothing and knows it")

	got, err := tp.Rows(ctx, s.Site)
	require.NoError(t, err)
	require.Contains(t, got, row.ID, "the row written before the failover is on the new primary")
	_, err = tp.WriteRow(ctx, s.Site)
	require.NoError(t, err, "the new primary takes writes")
	_, err = tp.WriteRow(ctx, p.Site)
	require.ErrorContains(t, err, "recovery is in progress", "the demoted primary is a read-only standby")
}

// After an unplanned failover, the rows missing on the new primary are
// exactly those committed after the standby's last replayed WAL position,
// which the adapter reports both before (the replica's seq) and after (the
// promoted point) the promote.
func TestUnplannedFailoverLosesExactlyTheRowsAfterTheReplayedLSN(t *testing.T) {
	ctx := ctxT(t)
	tp := postgres.NewTestPair(t)
	a, p, s := tp.Adapter, tp.Primary, tp.Standby
	var rows []postgres.WrittenRow
	for range 3 {
		r, err := tp.WriteRow(ctx, p.Site)
		require.NoError(t, err)
		rows = append(rows, r)
	}
	require.Eventually(t, func() bool {
		got, err := tp.Rows(ctx, s.Site)
		return err == nil && len(got) == 3
	}, 30*time.Second, 50*time.Millisecond, "the standby replays the first rows")
	require.NoError(t, tp.SetStalled(ctx, true))
	for range 3 {
		r, err := tp.WriteRow(ctx, p.Site)
		require.NoError(t, err)
		rows = append(rows, r)
	}
	require.NoError(t, tp.SetSiteDown(ctx, p.Site, true))
	t.Cleanup(func() { _ = tp.SetStalled(context.Background(), false) })

	sts, err := a.ReplicationStatus(ctx, res)
	require.NoError(t, err)
	var replayed int64 = -1
	for _, st := range sts {
		if st.Backend == s.Name {
			replayed = st.Seq
		}
	}
	require.Positive(t, replayed, "the standby reports its replayed position: %+v", sts)

	require.NoError(t, a.Fence(ctx, "t/fence", p.Name, 1))
	pr, err := a.Promote(ctx, "t/promote", s.Name, res, true)
	require.NoError(t, err)
	pt := pr.Points[0]
	require.Equal(t, replayed, pt.Seq, "the promoted point is the position the standby had replayed")
	require.Equal(t, int64(-1), pt.LostWrites, "WAL positions do not count writes")
	require.Positive(t, pt.DataLoss)

	got, err := tp.Rows(ctx, s.Site)
	require.NoError(t, err)
	var missing, wantMissing []string
	for _, r := range rows {
		require.True(t, r.After <= pt.Seq || r.Before >= pt.Seq,
			"row %s straddles the replayed position %d (%d..%d): the test cannot classify it", r.ID, pt.Seq, r.Before, r.After)
		if r.Before >= pt.Seq {
			wantMissing = append(wantMissing, r.ID)
		}
		if !slices.Contains(got, r.ID) {
			missing = append(missing, r.ID)
		}
	}
	require.Len(t, wantMissing, 3, "the rows written during the stall come after the replayed position")
	require.Equal(t, wantMissing, missing, "the rows missing are exactly those after the replayed position")
}

// A fence holds when the old primary's server comes back by itself, and
// only the fence's epoch lifts it; a diverged old primary is never
// unfenced before a resync.
func TestFenceHoldsAcrossRestartAndDivergedNeedsResync(t *testing.T) {
	ctx := ctxT(t)
	tp := postgres.NewTestPair(t)
	a, p, s := tp.Adapter, tp.Primary, tp.Standby
	require.NoError(t, tp.SetSiteDown(ctx, p.Site, true))
	require.NoError(t, a.Fence(ctx, "t/fence", p.Name, 4))
	_, err := a.Promote(ctx, "t/promote", s.Name, res, true)
	require.NoError(t, err)
	require.NoError(t, tp.SetSiteDown(ctx, p.Site, false))
	_, err = tp.WriteRow(ctx, p.Site)
	require.ErrorContains(t, err, "pg_hba.conf rejects connection", "the restarted old primary is fenced")

	err = a.Unfence(ctx, "t/unfence", p.Name, 4)
	require.True(t, drivers.IsPermanent(err), "unfencing a diverged old primary would make two writable actives: %v", err)
	_, err = a.Resync(ctx, "t/resync", p.Name, res)
	require.NoError(t, err)
	require.NoError(t, a.Unfence(ctx, "t/unfence-2", p.Name, 4))
	_, err = tp.WriteRow(ctx, p.Site)
	require.ErrorContains(t, err, "recovery is in progress", "the resynced old primary is a standby")
}
