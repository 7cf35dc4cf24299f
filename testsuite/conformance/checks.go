package conformance

import (
	"context"
	"encoding/json"
	"time"

	"github.com/stretchr/testify/require"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// checkReplicationStatus: status and lag are reported truthfully. A
// secondary that lacks writes never claims to be consistent past the
// oldest one it lacks, its lag is at least that write's age and grows
// while replication is stalled, and its seq moves only when it applies.
func checkReplicationStatus(r *run) {
	t, f := r.t, r.f
	r.caps()
	bs, err := f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err, "backend status")
	require.True(t, bs.Reachable, "a running backend is reachable")
	require.Equal(t, f.Primary.Backend, bs.Backend)
	require.Equal(t, f.Primary.Site, bs.Site)

	before := r.write(f.Primary.Site, 3)
	r.caughtUp(f.DR.Backend, f.DR.Site, before)
	for res, st := range r.status(f.Primary.Backend) {
		require.Equal(t, ferry.ReplicaActive, st.State, "the primary replica of %s is active", res)
	}
	st0 := r.status(f.DR.Backend)

	r.stall(true)
	after := r.write(f.Primary.Site, 2)
	require.Equal(t, ids(after), r.missing(f.DR.Site, after), "the fixture's stall let writes through")
	oldest, newestHeld := map[string]time.Time{}, map[string]time.Time{}
	for _, m := range after {
		if o, ok := oldest[r.resOf[m.ID]]; !ok || m.At.Before(o) {
			oldest[r.resOf[m.ID]] = m.At
		}
	}
	for _, m := range before {
		if m.At.After(newestHeld[r.resOf[m.ID]]) {
			newestHeld[r.resOf[m.ID]] = m.At
		}
	}
	tol := f.ClockTolerance
	asked := time.Now()
	s1, p1 := r.status(f.DR.Backend), r.status(f.Primary.Backend)
	for _, res := range f.Resources {
		st := s1[res]
		require.NotEqual(t, ferry.ReplicaActive, st.State, "a stalled secondary of %s is not active", res)
		require.False(t, st.LastConsistent.After(oldest[res].Add(tol)),
			"%s: the secondary claims to be consistent at %v, past write at %v it lacks", res, st.LastConsistent, oldest[res])
		require.False(t, st.LastConsistent.Before(newestHeld[res].Add(-tol)),
			"%s: the secondary claims to be consistent only at %v, before write at %v it holds", res, st.LastConsistent, newestHeld[res])
		require.GreaterOrEqual(t, st.Lag, asked.Sub(oldest[res])-tol,
			"%s: the lag %v understates the age of the oldest write the secondary lacks", res, st.Lag)
		require.GreaterOrEqual(t, st.Seq, st0[res].Seq, "%s: a secondary's seq never goes back", res)
		require.Greater(t, p1[res].Seq, st.Seq, "%s: the active's seq is ahead of a stalled secondary", res)
	}
	var s2 map[string]drivers.ReplicaStatus
	grew := waitFor(f.WaitTimeout, func() bool {
		s2 = r.status(f.DR.Backend)
		for _, res := range f.Resources {
			if s2[res].Lag < s1[res].Lag+500*time.Millisecond {
				return false
			}
		}
		return true
	})
	require.True(t, grew, "the lag does not grow while replication is stalled: %+v then %+v", s1, s2)
	for _, res := range f.Resources {
		require.False(t, s2[res].LastConsistent.After(oldest[res].Add(tol)), "%s: a stalled secondary moved its consistent point", res)
	}
	require.Equal(t, ids(after), r.missing(f.DR.Site, after), "the fixture's stall let writes through")

	r.stall(false)
	r.caughtUp(f.DR.Backend, f.DR.Site, append(before, after...))
	s3 := r.status(f.DR.Backend)
	for _, res := range f.Resources {
		require.Greater(t, s3[res].Seq, s1[res].Seq, "%s: the seq of a secondary that applied writes moves", res)
		require.False(t, s3[res].LastConsistent.Before(oldest[res].Add(-tol)), "%s: a caught-up secondary is consistent past its writes", res)
	}
}

// checkPlannedFailover: snapshot, sync, demote, promote loses no write; the
// new primary takes writes and the demoted one follows it.
func checkPlannedFailover(r *run) {
	f := r.f
	before := r.write(f.Primary.Site, 3)
	r.plannedFailover(f.Primary, f.DR, before)
	after := r.write(f.DR.Site, 2)
	r.refused(f.Primary.Site, "the demoted old primary")
	r.holds(f.Primary.Site, after, "a demoted primary is a secondary of the new active")
}

// checkUnplannedFailover: with the primary site gone, a forced promote
// loses exactly the writes it reports lost, or, when the adapter cannot
// count writes (LostWrites -1), its data-loss window covers exactly them.
func checkUnplannedFailover(r *run) {
	t, f := r.t, r.f
	c := r.caps()
	before, after, res := r.unplannedFailover(1)
	require.Empty(t, r.missing(f.DR.Site, before), "the forced promote lost writes that had replicated")
	require.Equal(t, ids(after), r.missing(f.DR.Site, after), "the fixture's stall let writes through: the check needs lost writes")
	lost := map[string]int64{}
	for _, m := range after {
		lost[r.resOf[m.ID]]++
	}
	tol := f.ClockTolerance
	for _, p := range res.Points {
		if p.LostWrites >= 0 {
			require.Equal(t, lost[p.Resource], p.LostWrites, "%s: the promote reported %d lost writes, %d were lost", p.Resource, p.LostWrites, lost[p.Resource])
		} else {
			require.Equal(t, int64(-1), p.LostWrites, "%s: LostWrites is a count or -1", p.Resource)
			require.False(t, c.ReportsLostWrites, "%s: the adapter says it counts lost writes, yet reported -1", p.Resource)
		}
		require.Positive(t, p.DataLoss, "%s: writes were lost, yet no data-loss window", p.Resource)
		for _, m := range before {
			if r.resOf[m.ID] == p.Resource {
				require.False(t, m.At.After(p.At.Add(tol)), "%s: held write %s at %v is after the promoted point %v", p.Resource, m.ID, m.At, p.At)
			}
		}
		for _, m := range after {
			if r.resOf[m.ID] != p.Resource {
				continue
			}
			require.False(t, m.At.Before(p.At.Add(-tol)), "%s: lost write %s at %v is before the promoted point %v", p.Resource, m.ID, m.At, p.At)
			require.False(t, m.At.After(p.At.Add(p.DataLoss+tol)), "%s: lost write %s at %v is outside the data-loss window %v after %v", p.Resource, m.ID, m.At, p.DataLoss, p.At)
		}
	}
	r.write(f.DR.Site, 1)

	r.siteDown(f.Primary.Site, false)
	r.refused(f.Primary.Site, "the returning old primary is fenced")
	bs, err := f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err, "backend status of the returned old primary")
	require.True(t, bs.Fenced, "the old primary reports its fence")
	require.Equal(t, int64(1), bs.FenceEpoch, "the fence keeps its epoch")
	r.stall(false)
}

// checkPromoteIdempotent: promoting the active changes nothing, and the same
// key twice applies once and answers the same.
func checkPromoteIdempotent(r *run) {
	t, f := r.t, r.f
	before := r.write(f.Primary.Site, 2)
	res0, err := f.Storage.Promote(r.ctx(), r.key("promote-active"), f.Primary.Backend, f.Resources, false)
	require.NoError(t, err, "promoting the active is a no-op, not an error")
	r.points(res0)
	for _, p := range res0.Points {
		require.Contains(t, []int64{0, -1}, p.LostWrites, "promoting the active loses nothing: %+v", p)
	}
	more := r.write(f.Primary.Site, 1)
	r.caughtUp(f.DR.Backend, f.DR.Site, append(before, more...))
	r.refused(f.DR.Site, "the secondary, after promoting the active")

	_, err = f.Storage.Sync(r.ctx(), r.key("sync"), f.Primary.Backend, f.Resources)
	require.NoError(t, err, "sync")
	require.NoError(t, f.Storage.Demote(r.ctx(), r.key("demote"), f.Primary.Backend, f.Resources), "demote")
	k := r.key("promote")
	res1, err := f.Storage.Promote(r.ctx(), k, f.DR.Backend, f.Resources, false)
	require.NoError(t, err, "promote")
	res2, err := f.Storage.Promote(r.ctx(), k, f.DR.Backend, f.Resources, false)
	require.NoError(t, err, "promote again with the same key")
	require.JSONEq(t, mustJSON(t, res1), mustJSON(t, res2), "a replayed key answers what the first call answered")
	res3, err := f.Storage.Promote(r.ctx(), r.key("promote-again"), f.DR.Backend, f.Resources, false)
	require.NoError(t, err, "promoting the new active again")
	r.points(res3)

	all := append(append(before, more...), r.write(f.DR.Site, 2)...)
	r.refused(f.Primary.Site, "the demoted old primary, after promoting the new one twice")
	require.Empty(t, r.missing(f.DR.Site, all), "promoting twice lost writes")
	r.holds(f.Primary.Site, all, "the demoted old primary still follows the new active")
}

// checkFenceAndDemote: a fenced or demoted backend accepts no write; only
// the fence's own epoch lifts it; promoting a demoted active undoes the
// demote (a planned failover rolled back before its promote).
func checkFenceAndDemote(r *run) {
	t, f := r.t, r.f
	c := r.caps()
	require.True(t, c.Fence, "the adapter must fence: an unplanned failover depends on it")
	all := r.write(f.Primary.Site, 1)
	require.NoError(t, f.Storage.Fence(r.ctx(), r.key("fence"), f.Primary.Backend, 7), "fence")
	bs, err := f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err, "backend status of a fenced backend")
	require.True(t, bs.Fenced, "a fenced backend reports it")
	require.Equal(t, int64(7), bs.FenceEpoch)
	r.refused(f.Primary.Site, "after fence")

	err = f.Storage.Unfence(r.ctx(), r.key("unfence-wrong"), f.Primary.Backend, 6)
	require.Error(t, err, "an unfence under another epoch must be refused")
	require.True(t, isKind(err, drivers.Permanent), "an unfence under another epoch is permanent: %v", err)
	r.refused(f.Primary.Site, "after a refused unfence")

	require.NoError(t, f.Storage.Unfence(r.ctx(), r.key("unfence"), f.Primary.Backend, 7), "unfence")
	bs, err = f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err)
	require.False(t, bs.Fenced, "an unfenced backend reports it")
	all = append(all, r.write(f.Primary.Site, 1)...)
	r.caughtUp(f.DR.Backend, f.DR.Site, all)

	require.NoError(t, f.Storage.Demote(r.ctx(), r.key("demote"), f.Primary.Backend, f.Resources), "demote")
	r.refused(f.Primary.Site, "after demote")
	r.refused(f.DR.Site, "the secondary, while the primary is demoted")
	_, err = f.Storage.Promote(r.ctx(), r.key("undo-demote"), f.Primary.Backend, f.Resources, false)
	require.NoError(t, err, "promoting a demoted active undoes the demote")
	all = append(all, r.write(f.Primary.Site, 1)...)
	r.caughtUp(f.DR.Backend, f.DR.Site, all)
}

// checkReprotectAndFailback: after an unplanned failover, resync makes the
// returning old primary a secondary of the new one (discarding what it
// alone held), and a planned failback brings every write home.
func checkReprotectAndFailback(r *run) {
	t, f := r.t, r.f
	before, after, _ := r.unplannedFailover(3)
	newer := r.write(f.DR.Site, 2)
	r.siteDown(f.Primary.Site, false)
	r.stall(false)

	rr, err := f.Storage.Resync(r.ctx(), r.key("resync"), f.Primary.Backend, f.Resources)
	require.NoError(t, err, "resync the returned old primary")
	lost := map[string]int64{}
	for _, m := range after {
		lost[r.resOf[m.ID]]++
	}
	for _, res := range f.Resources {
		require.Contains(t, rr.Discarded, res, "resync reports what it discarded of %s", res)
		if d := rr.Discarded[res]; d != -1 {
			require.Equal(t, lost[res], d, "%s: resync discarded %d writes, the old primary alone held %d", res, d, lost[res])
		}
	}
	require.NoError(t, f.Storage.Unfence(r.ctx(), r.key("unfence"), f.Primary.Backend, 3), "unfence the resynced old primary")
	r.refused(f.Primary.Site, "a resynced old primary is a secondary")
	newer = append(newer, r.write(f.DR.Site, 1)...)
	home := append(before, newer...)
	r.caughtUp(f.Primary.Backend, f.Primary.Site, home)
	require.Equal(t, ids(after), r.missing(f.Primary.Site, after), "resync keeps no write only the old primary had")

	r.plannedFailover(f.DR, f.Primary, home)
	back := r.write(f.Primary.Site, 2)
	r.refused(f.DR.Site, "the demoted DR side after failback")
	r.caughtUp(f.DR.Backend, f.DR.Site, append(home, back...))
}

// checkTestFailover: a clone of the DR replica is readable, isolated from
// production both ways, leaves replication running, and its stop removes
// it for good.
func checkTestFailover(r *run) {
	t, f := r.t, r.f
	c := r.caps()
	require.True(t, c.TestFailover, "the adapter must support test failover")
	before := r.write(f.Primary.Site, 2)
	r.caughtUp(f.DR.Backend, f.DR.Site, before)

	var bubble string
	if f.Network != nil {
		var err error
		bubble, err = f.Network.CreateBubble(r.ctx(), r.key("bubble"), f.DR.Site, "conformance-drill")
		require.NoError(t, err, "create a test bubble")
	}
	clones, err := f.Storage.TestFailoverStart(r.ctx(), r.key("clone"), f.DR.Backend, f.Resources)
	require.NoError(t, err, "test failover start")
	require.Len(t, clones, len(f.Resources), "one clone per resource, in order")
	t.Cleanup(func() {
		_ = f.Storage.TestFailoverStop(context.Background(), "conformance-cleanup/"+t.Name(), f.DR.Backend, clones)
	})
	cloneOf := map[string]string{}
	for i, id := range clones {
		cloneOf[f.Resources[i]] = id
	}
	cloneHolds := func(id string) map[string]bool {
		got, err := f.Workload.CloneMarkers(r.ctx(), id)
		require.NoError(t, err, "read clone %s", id)
		set := map[string]bool{}
		for _, m := range got {
			set[m] = true
		}
		return set
	}
	for _, m := range before {
		require.True(t, cloneHolds(cloneOf[r.resOf[m.ID]])[m.ID], "clone of %s lacks write %s made before it", r.resOf[m.ID], m.ID)
	}
	var inClone []Marker
	if cw, ok := f.Workload.(CloneWriter); ok {
		for _, id := range clones {
			m, err := cw.WriteClone(r.ctx(), id)
			require.NoError(t, err, "write to clone %s", id)
			require.True(t, cloneHolds(id)[m.ID], "clone %s lost its own write", id)
			inClone = append(inClone, m)
		}
	}

	during := r.write(f.Primary.Site, 2)
	r.caughtUp(f.DR.Backend, f.DR.Site, append(before, during...))
	for _, m := range during {
		require.False(t, cloneHolds(cloneOf[r.resOf[m.ID]])[m.ID], "production write %s reached the clone", m.ID)
	}
	for _, m := range inClone {
		for _, res := range f.Resources {
			require.False(t, r.markers(f.Primary.Site, res)[m.ID], "clone write %s reached the primary", m.ID)
			require.False(t, r.markers(f.DR.Site, res)[m.ID], "clone write %s reached the DR replica", m.ID)
		}
	}
	listed, err := f.Workload.Clones(r.ctx())
	require.NoError(t, err, "list clones")
	require.Subset(t, listed, clones, "the storage holds the clones")

	require.NoError(t, f.Storage.TestFailoverStop(r.ctx(), r.key("stop"), f.DR.Backend, clones), "test failover stop")
	listed, err = f.Workload.Clones(r.ctx())
	require.NoError(t, err, "list clones")
	for _, id := range clones {
		require.NotContains(t, listed, id, "test failover stop left clone %s behind", id)
		_, err := f.Workload.CloneMarkers(r.ctx(), id)
		require.Error(t, err, "a stopped clone %s is still readable", id)
	}
	require.NoError(t, f.Storage.TestFailoverStop(r.ctx(), r.key("stop-again"), f.DR.Backend, clones),
		"stopping clones that are gone is done, not an error")
	if bubble != "" {
		require.NoError(t, f.Network.DestroyBubble(r.ctx(), r.key("bubble-destroy"), f.DR.Site, bubble), "destroy the bubble")
	}
	after := r.write(f.Primary.Site, 1)
	r.caughtUp(f.DR.Backend, f.DR.Site, append(append(before, during...), after...))
}

// checkFailoverCompleted: every member records the active backend it is
// told, and the backend reports each member's view.
func checkFailoverCompleted(r *run) {
	t, f := r.t, r.f
	require.NotEmpty(t, f.Primary.Members, "the fixture names the primary backend's members")
	before := r.write(f.Primary.Site, 1)
	r.plannedFailover(f.Primary, f.DR, before)
	require.NoError(t, f.Storage.SetReplicationStatus(r.ctx(), r.key("status"), f.Primary.Backend, ferry.ReplicationFailedOver, f.TargetID))
	for _, m := range f.Primary.Members {
		require.NoError(t, f.Storage.FailoverCompleted(r.ctx(), r.key("completed-"+m), f.Primary.Backend, m, f.TargetID), "failover_completed on %s", m)
	}
	bs, err := f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err)
	require.Equal(t, ferry.ReplicationFailedOver, bs.ReplicationStatus)
	require.Equal(t, f.TargetID, bs.ActiveBackendID)
	seen := map[string]bool{}
	for _, m := range bs.Members {
		seen[m.Name] = true
		require.Equal(t, f.TargetID, m.ActiveBackendID, "member %s did not record failover_completed", m.Name)
	}
	for _, m := range f.Primary.Members {
		require.True(t, seen[m], "backend status does not list member %s", m)
	}
	err = f.Storage.FailoverCompleted(r.ctx(), r.key("completed-unknown"), f.Primary.Backend, "no-such-member", f.TargetID)
	require.Error(t, err, "an unknown member")
	require.True(t, isKind(err, drivers.Permanent), "an unknown member is permanent: %v", err)
	err = f.Storage.SetReplicationStatus(r.ctx(), r.key("status-bad"), f.Primary.Backend, "no-such-status", f.TargetID)
	require.True(t, isKind(err, drivers.Permanent), "an unknown replication_status is permanent: %v", err)
}

// checkFreeze: a frozen backend refuses management changes until thawed,
// and keeps serving the application.
func checkFreeze(r *run) {
	t, f := r.t, r.f
	require.True(t, r.caps().Freeze, "the adapter must support freeze")
	require.NoError(t, f.Storage.Freeze(r.ctx(), r.key("freeze"), f.Primary.Backend))
	bs, err := f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err)
	require.True(t, bs.Frozen, "a frozen backend reports it")
	_, err = f.Storage.Sync(r.ctx(), r.key("sync-frozen"), f.Primary.Backend, f.Resources)
	require.Error(t, err, "a frozen backend refuses a sync")
	require.True(t, isKind(err, drivers.Permanent), "refusing a frozen backend is permanent: %v", err)
	all := r.write(f.Primary.Site, 1)
	require.NoError(t, f.Storage.Thaw(r.ctx(), r.key("thaw"), f.Primary.Backend))
	bs, err = f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err)
	require.False(t, bs.Frozen, "a thawed backend reports it")
	_, err = f.Storage.Sync(r.ctx(), r.key("sync"), f.Primary.Backend, f.Resources)
	require.NoError(t, err, "a thawed backend syncs")
	require.Empty(t, r.missing(f.DR.Site, all), "sync left writes behind")
}

// checkErrors: unknown names are permanent errors, a down site is
// Unreachable within seconds (not a hang), a cancelled call returns at once
// with an error worth retrying.
func checkErrors(r *run) {
	t, f := r.t, r.f
	_, err := f.Storage.Capabilities(r.ctx(), "no-such-backend")
	require.True(t, isKind(err, drivers.Permanent), "an unknown backend is permanent: %v", err)
	_, err = f.Storage.Promote(r.ctx(), r.key("promote-unknown"), "no-such-backend", f.Resources, false)
	require.True(t, isKind(err, drivers.Permanent), "promote on an unknown backend is permanent: %v", err)
	_, err = f.Storage.Promote(r.ctx(), r.key("promote-unknown-res"), f.DR.Backend, []string{"no-such-resource"}, false)
	require.True(t, isKind(err, drivers.Permanent), "promote of an unknown resource is permanent: %v", err)
	_, err = f.Storage.Promote(r.ctx(), r.key("promote-undemoted"), f.DR.Backend, f.Resources, false)
	require.True(t, isKind(err, drivers.Permanent), "a planned promote while the primary is active and not demoted is permanent: %v", err)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err = f.Storage.BackendStatus(cancelled, f.Primary.Backend)
	require.Error(t, err, "a cancelled call must fail")
	require.False(t, isKind(err, drivers.Permanent), "a cancelled call is worth retrying: %v", err)
	require.Less(t, time.Since(start), 2*time.Second, "a cancelled call must return at once")

	before := r.write(f.Primary.Site, 1)
	r.siteDown(f.DR.Site, true)
	timed := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		err := call(ctx)
		require.True(t, isKind(err, drivers.Unreachable), "%s on a down site is Unreachable: %v", what, err)
		require.Less(t, time.Since(start), 10*time.Second, "%s on a down site took %v: a hang", what, time.Since(start))
	}
	timed("backend status", func(ctx context.Context) error {
		_, err := f.Storage.BackendStatus(ctx, f.DR.Backend)
		return err
	})
	timed("capabilities", func(ctx context.Context) error {
		_, err := f.Storage.Capabilities(ctx, f.DR.Backend)
		return err
	})
	timed("forced promote", func(ctx context.Context) error {
		_, err := f.Storage.Promote(ctx, r.key("promote-down"), f.DR.Backend, f.Resources, true)
		return err
	})
	timed("sync to a down site", func(ctx context.Context) error {
		_, err := f.Storage.Sync(ctx, r.key("sync-down"), f.Primary.Backend, f.Resources)
		return err
	})
	for res, st := range r.status(f.DR.Backend) {
		require.Equal(t, ferry.ReplicaError, st.State, "the replica of %s at a down site is in error", res)
	}
	r.siteDown(f.DR.Site, false)
	r.caughtUp(f.DR.Backend, f.DR.Site, append(before, r.write(f.Primary.Site, 1)...))
}

// checkIdempotencyKeys: a key seen before applies nothing the second time
// and answers what the first call answered; a key reused for another
// operation is refused.
func checkIdempotencyKeys(r *run) {
	t, f := r.t, r.f
	kf := r.key("freeze")
	require.NoError(t, f.Storage.Freeze(r.ctx(), kf, f.Primary.Backend))
	require.NoError(t, f.Storage.Thaw(r.ctx(), r.key("thaw"), f.Primary.Backend))
	require.NoError(t, f.Storage.Freeze(r.ctx(), kf, f.Primary.Backend), "a replayed freeze")
	bs, err := f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err)
	require.False(t, bs.Frozen, "a replayed freeze froze the backend again")

	kfe := r.key("fence")
	require.NoError(t, f.Storage.Fence(r.ctx(), kfe, f.Primary.Backend, 5))
	require.NoError(t, f.Storage.Unfence(r.ctx(), r.key("unfence"), f.Primary.Backend, 5))
	require.NoError(t, f.Storage.Fence(r.ctx(), kfe, f.Primary.Backend, 5), "a replayed fence")
	bs, err = f.Storage.BackendStatus(r.ctx(), f.Primary.Backend)
	require.NoError(t, err)
	require.False(t, bs.Fenced, "a replayed fence fenced the backend again")
	all := r.write(f.Primary.Site, 1)

	if r.caps().ConsistencyGroup {
		ks := r.key("snapshot")
		s1, err := f.Storage.SnapshotGroup(r.ctx(), ks, f.Primary.Backend, f.Resources)
		require.NoError(t, err)
		all = append(all, r.write(f.Primary.Site, 1)...)
		s2, err := f.Storage.SnapshotGroup(r.ctx(), ks, f.Primary.Backend, f.Resources)
		require.NoError(t, err)
		require.JSONEq(t, mustJSON(t, s1), mustJSON(t, s2), "a replayed snapshot answers the first one")
	}
	err = f.Storage.Thaw(r.ctx(), kf, f.Primary.Backend)
	require.True(t, isKind(err, drivers.Permanent), "a key reused for another operation is refused as permanent: %v", err)
	r.caughtUp(f.DR.Backend, f.DR.Site, all)
}

func mustJSON(t require.TestingT, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
