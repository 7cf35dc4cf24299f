package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// Run runs every check against fixtures from f, each as a subtest with a
// fresh fixture.
func Run(t *testing.T, f Factory) {
	checks := []struct {
		name string
		fn   func(*run)
	}{
		{"replication_status", checkReplicationStatus},
		{"planned_failover", checkPlannedFailover},
		{"unplanned_failover", checkUnplannedFailover},
		{"promote_idempotent", checkPromoteIdempotent},
		{"fence_and_demote", checkFenceAndDemote},
		{"reprotect_and_failback", checkReprotectAndFailback},
		{"test_failover", checkTestFailover},
		{"failover_completed", checkFailoverCompleted},
		{"freeze", checkFreeze},
		{"errors", checkErrors},
		{"idempotency_keys", checkIdempotencyKeys},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			fx := f(t)
			require.NotNil(t, fx, "factory returned no fixture")
			fx.defaults()
			c.fn(&run{t: t, f: fx, written: map[string]Marker{}, resOf: map[string]string{}})
		})
	}
}

// run is one check's state: the fixture and every marker written so far.
type run struct {
	t       *testing.T
	f       *Fixture
	keyN    int
	written map[string]Marker
	resOf   map[string]string // marker id -> resource
}

func (r *run) key(step string) string {
	r.keyN++
	return fmt.Sprintf("conformance/%s/%d/%s", r.t.Name(), r.keyN, step)
}

// ctx bounds one port call: a call that outlives it is a hang.
func (r *run) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), r.f.CallTimeout)
	r.t.Cleanup(cancel)
	return ctx
}

// write writes n markers to every resource at site and returns them.
func (r *run) write(site string, n int) []Marker {
	r.t.Helper()
	var out []Marker
	for _, res := range r.f.Resources {
		for range n {
			m, err := r.f.Workload.Write(r.ctx(), site, res)
			require.NoError(r.t, err, "write a marker to %s at %s", res, site)
			require.NotEmpty(r.t, m.ID, "the workload returned a marker without id")
			require.NotContains(r.t, r.written, m.ID, "the workload reused marker id %s", m.ID)
			r.written[m.ID] = m
			r.resOf[m.ID] = res
			out = append(out, m)
		}
	}
	return out
}

// refused asserts that the copies at site accept no write.
func (r *run) refused(site, why string) {
	r.t.Helper()
	for _, res := range r.f.Resources {
		m, err := r.f.Workload.Write(r.ctx(), site, res)
		require.Error(r.t, err, "%s: %s at %s accepted write %s", why, res, site, m.ID)
	}
}

func (r *run) markers(site, res string) map[string]bool {
	r.t.Helper()
	ids, err := r.f.Workload.Markers(r.ctx(), site, res)
	require.NoError(r.t, err, "read markers of %s at %s", res, site)
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// missing returns the ids of ms that resource's copies at site lack.
func (r *run) missing(site string, ms []Marker) []string {
	r.t.Helper()
	var out []string
	held := map[string]map[string]bool{}
	for _, res := range r.f.Resources {
		held[res] = r.markers(site, res)
	}
	for _, m := range ms {
		in := false
		for _, h := range held {
			in = in || h[m.ID]
		}
		if !in {
			out = append(out, m.ID)
		}
	}
	sort.Strings(out)
	return out
}

// holds waits until site's copies hold every marker of ms.
func (r *run) holds(site string, ms []Marker, why string) {
	r.t.Helper()
	var last []string
	ok := waitFor(r.f.WaitTimeout, func() bool {
		last = r.missing(site, ms)
		return len(last) == 0
	})
	require.True(r.t, ok, "%s: the copies at %s still lack markers %v", why, site, last)
}

func ids(ms []Marker) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.ID)
	}
	sort.Strings(out)
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// status returns each resource's replica on backend.
func (r *run) status(backend string) map[string]drivers.ReplicaStatus {
	r.t.Helper()
	sts, err := r.f.Storage.ReplicationStatus(r.ctx(), r.f.Resources)
	require.NoError(r.t, err, "replication status")
	out := map[string]drivers.ReplicaStatus{}
	for _, st := range sts {
		if st.Backend == backend {
			out[st.Resource] = st
		}
	}
	for _, res := range r.f.Resources {
		require.Contains(r.t, out, res, "replication status lists no replica of %s on %s", res, backend)
	}
	return out
}

// caughtUp waits until the DR-side replicas (on backend) are in sync with no
// lag and hold every marker written so far at the active site.
func (r *run) caughtUp(backend, site string, ms []Marker) {
	r.t.Helper()
	r.holds(site, ms, "replication keeps the secondary up to date")
	var last map[string]drivers.ReplicaStatus
	ok := waitFor(r.f.WaitTimeout, func() bool {
		last = r.status(backend)
		for _, st := range last {
			if st.State != ferry.ReplicaInSync || st.Lag > time.Second {
				return false
			}
		}
		return true
	})
	require.True(r.t, ok, "replicas on %s never reported in_sync without lag once they held every marker: %+v", backend, last)
}

func (r *run) caps() drivers.Capabilities {
	r.t.Helper()
	c, err := r.f.Storage.Capabilities(r.ctx(), r.f.Primary.Backend)
	require.NoError(r.t, err, "capabilities")
	require.True(r.t, c.Replication, "the adapter must replicate to run the conformance suite")
	return c
}

func (r *run) stall(on bool) {
	r.t.Helper()
	require.NoError(r.t, r.f.Control.SetStalled(r.ctx(), on), "stall replication: %v", on)
}

func (r *run) siteDown(site string, down bool) {
	r.t.Helper()
	require.NoError(r.t, r.f.Control.SetSiteDown(r.ctx(), site, down), "site %s down: %v", site, down)
}

// plannedFailover moves the resources from `from` to `to` the way a
// planned failover does, and checks it lost nothing.
func (r *run) plannedFailover(from, to Side, before []Marker) drivers.PromoteResult {
	r.t.Helper()
	c := r.caps()
	if c.ConsistencyGroup {
		snap, err := r.f.Storage.SnapshotGroup(r.ctx(), r.key("snapshot"), from.Backend, r.f.Resources)
		require.NoError(r.t, err, "snapshot group")
		require.NotEmpty(r.t, snap.ID, "a snapshot has an id")
		for _, res := range r.f.Resources {
			require.Contains(r.t, snap.Seqs, res, "the snapshot covers %s", res)
		}
	}
	_, err := r.f.Storage.Sync(r.ctx(), r.key("sync"), from.Backend, r.f.Resources)
	require.NoError(r.t, err, "sync")
	require.NoError(r.t, r.f.Storage.Demote(r.ctx(), r.key("demote"), from.Backend, r.f.Resources), "demote")
	r.refused(from.Site, "after demote")
	res, err := r.f.Storage.Promote(r.ctx(), r.key("promote"), to.Backend, r.f.Resources, false)
	require.NoError(r.t, err, "promote")
	r.points(res)
	for _, p := range res.Points {
		require.Contains(r.t, []int64{0, -1}, p.LostWrites, "a planned failover reported lost writes: %+v", p)
		if p.LostWrites == 0 {
			require.Zero(r.t, p.DataLoss, "no write lost, yet a data-loss window: %+v", p)
		}
	}
	require.Empty(r.t, r.missing(to.Site, before), "a planned failover lost writes")
	return res
}

// points checks a promote result names every resource once.
func (r *run) points(res drivers.PromoteResult) {
	r.t.Helper()
	var got []string
	for _, p := range res.Points {
		got = append(got, p.Resource)
	}
	want := slices.Clone(r.f.Resources)
	sort.Strings(got)
	sort.Strings(want)
	require.Equal(r.t, want, got, "promote reports one point per resource")
}

// unplannedFailover writes markers that replicate, stalls replication,
// writes more, takes the primary site down, fences it and force-promotes
// the DR side. It returns the markers written and the promote result.
func (r *run) unplannedFailover(epoch int64) (before, after []Marker, res drivers.PromoteResult) {
	r.t.Helper()
	before = r.write(r.f.Primary.Site, 3)
	r.caughtUp(r.f.DR.Backend, r.f.DR.Site, before)
	r.stall(true)
	after = r.write(r.f.Primary.Site, 3)
	r.siteDown(r.f.Primary.Site, true)
	require.NoError(r.t, r.f.Storage.Fence(r.ctx(), r.key("fence"), r.f.Primary.Backend, epoch),
		"fence must work on an unreachable backend: an unplanned failover fences before it promotes")
	res, err := r.f.Storage.Promote(r.ctx(), r.key("promote"), r.f.DR.Backend, r.f.Resources, true)
	require.NoError(r.t, err, "forced promote with the primary site down")
	r.points(res)
	return before, after, res
}

func isKind(err error, kind string) bool {
	var e *drivers.Error
	return errors.As(err, &e) && e.Kind == kind
}
