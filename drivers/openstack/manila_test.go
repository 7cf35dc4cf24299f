package openstack_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/replicas"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/openstack"
	"github.com/ferrydr/ferry/drivers/openstack/openstacktest"
)

// Every test here runs against real Manila (Debian's manila-api,
// manila-scheduler and one manila-share per backend, on Manila's
// DummyDriver with readable replication): backend "share-a" is alpha in
// zone-a (site-a), "share-b" is bravo in zone-b (site-b). What the adapter
// did is read back from Manila's API, not only through the adapter.
func TestManila(t *testing.T) {
	m := openstacktest.StartManila(t, openstacktest.ManilaOptions{})
	a := newManilaAdapter(t, m, "")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	alpha, bravo := m.Backend("alpha"), m.Backend("bravo")
	defer func() {
		if t.Failed() {
			t.Logf("manila logs:\n%s", m.LogTail(25))
		}
	}()

	docs := makeShare(ctx, t, m, "docs", alpha.Zone)
	logs := makeShare(ctx, t, m, "logs", alpha.Zone)

	t.Run("enable replication creates a replica in the other zone", func(t *testing.T) {
		require.NoError(t, a.EnableReplication(ctx, "k1/enable", "share-a", "share-b", []string{"docs"}))
		reps := replicasOf(ctx, t, m, docs)
		require.Len(t, reps, 2)
		require.Equal(t, "active", on(t, reps, alpha.Host).State)
		require.Equal(t, bravo.Zone, on(t, reps, bravo.Host).AvailabilityZone)
		// Manila's create answers with the replica out_of_sync; the
		// driver's update makes it in_sync.
		require.Eventually(t, func() bool {
			return on(t, replicasOf(ctx, t, m, docs), bravo.Host).State == "in_sync"
		}, 60*time.Second, 300*time.Millisecond)

		st, err := a.ReplicationStatus(ctx, []string{"docs"})
		require.NoError(t, err)
		require.Equal(t, []drivers.ReplicaStatus{
			{Resource: "docs", Site: "site-a", Backend: "share-a", State: ferry.ReplicaActive},
			{Resource: "docs", Site: "site-b", Backend: "share-b", State: ferry.ReplicaInSync},
		}, st)

		// The same key again applies nothing, even when the replica is
		// gone: delete it behind the adapter's back.
		_, err = m.Do(ctx, http.MethodDelete, "/share-replicas/"+on(t, reps, bravo.Host).ID, "2.73", nil, nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(replicasOf(ctx, t, m, docs)) == 1 }, 60*time.Second, 300*time.Millisecond)
		require.NoError(t, a.EnableReplication(ctx, "k1/enable", "share-a", "share-b", []string{"docs"}))
		require.Len(t, replicasOf(ctx, t, m, docs), 1, "a repeated key creates no replica")
		// A new key does, and a third call finds it there.
		require.NoError(t, a.EnableReplication(ctx, "k1/enable-again", "share-a", "share-b", []string{"docs"}))
		require.NoError(t, a.EnableReplication(ctx, "k1/enable-third", "share-a", "share-b", []string{"docs"}))
		require.Len(t, replicasOf(ctx, t, m, docs), 2)
		require.Eventually(t, func() bool {
			return on(t, replicasOf(ctx, t, m, docs), bravo.Host).State == "in_sync"
		}, 60*time.Second, 300*time.Millisecond)

		caps, err := a.Capabilities(ctx, "share-b")
		require.NoError(t, err)
		require.Equal(t, drivers.Capabilities{Replication: true, TestFailover: true}, caps)
		bs, err := a.BackendStatus(ctx, "share-b")
		require.NoError(t, err)
		require.Equal(t, drivers.BackendStatus{Backend: "share-b", Site: "site-b", Reachable: true, ReplicationStatus: ferry.ReplicationEnabled,
			Members: []drivers.MemberStatus{{Name: bravo.Host, Up: true}}}, bs)
	})

	t.Run("sync and snapshot on the active side", func(t *testing.T) {
		// Sync resyncs a secondary that is out_of_sync and waits for it.
		sec := on(t, replicasOf(ctx, t, m, docs), bravo.Host)
		_, err := m.Do(ctx, http.MethodPost, "/share-replicas/"+sec.ID+"/action", "2.73", map[string]any{"reset_replica_state": map[string]string{"replica_state": "out_of_sync"}}, nil)
		require.NoError(t, err)
		st, err := a.Sync(ctx, "k2/sync", "share-a", []string{"docs"})
		require.NoError(t, err)
		require.Equal(t, []drivers.ReplicaStatus{
			{Resource: "docs", Site: "site-a", Backend: "share-a", State: ferry.ReplicaActive},
			{Resource: "docs", Site: "site-b", Backend: "share-b", State: ferry.ReplicaInSync},
		}, st)
		require.Equal(t, "in_sync", on(t, replicasOf(ctx, t, m, docs), bravo.Host).State)
		_, err = a.Sync(ctx, "k2/sync-wrong-side", "share-b", []string{"docs"})
		require.True(t, drivers.IsPermanent(err), "the active replica is not on share-b: %v", err)

		snap, err := a.SnapshotGroup(ctx, "k2/snap", "share-a", []string{"docs"})
		require.NoError(t, err)
		require.Empty(t, snap.Seqs, "Manila has no write sequence numbers")
		var s struct {
			Snapshot struct {
				Status  string `json:"status"`
				ShareID string `json:"share_id"`
			} `json:"snapshot"`
		}
		_, err = m.Do(ctx, http.MethodGet, "/snapshots/"+snap.ID, "2.73", nil, &s)
		require.NoError(t, err)
		require.Equal(t, "available", s.Snapshot.Status)
		require.Equal(t, docs, s.Snapshot.ShareID)
		require.Len(t, snapshotInstances(ctx, t, m, snap.ID), 2, "a replicated snapshot has an instance on each replica")
		again, err := a.SnapshotGroup(ctx, "k2/snap", "share-a", []string{"docs"})
		require.NoError(t, err)
		require.Equal(t, snap.ID, again.ID)
		require.Len(t, snapshotsOf(ctx, t, m, docs), 1, "a repeated key takes no second snapshot")
		_, err = m.Do(ctx, http.MethodDelete, "/snapshots/"+snap.ID, "2.73", nil, nil)
		require.NoError(t, err)
	})

	t.Run("promote the zone-b replica", func(t *testing.T) {
		// Manila has no demote: before promote it only checks.
		require.NoError(t, a.Demote(ctx, "k3/demote", "share-a", []string{"docs"}))
		require.Equal(t, "active", on(t, replicasOf(ctx, t, m, docs), alpha.Host).State, "demote leaves Manila's active replica as it is")

		before := time.Now().UTC()
		res, err := a.Promote(ctx, "k3/promote", "share-b", []string{"docs"}, false)
		require.NoError(t, err)
		require.Len(t, res.Points, 1)
		require.Equal(t, "docs", res.Points[0].Resource)
		require.Equal(t, int64(-1), res.Points[0].LostWrites, "Manila cannot tell lost writes")
		require.False(t, res.Points[0].At.Before(before))
		reps := replicasOf(ctx, t, m, docs)
		require.Equal(t, "active", on(t, reps, bravo.Host).State)
		old := on(t, reps, alpha.Host)
		require.NotEqual(t, "active", old.State, "Manila's promote demoted the old active itself")
		t.Logf("after promote: old active on %s is %s/%s", alpha.Host, old.Status, old.State)
		// Zed's Manila (2.73) has no quiesce_wait_time (2.75): the body
		// Manila logged carries none.
		require.True(t, m.Grep(`body: {"promote":{}}`), "manila-api logged the promote body")
		require.False(t, m.Grep("quiesce_wait_time"))

		// A new key is idempotent too: the replica is already active, so
		// nothing is sent and Manila's record is untouched.
		res2, err := a.Promote(ctx, "k3/promote-again", "share-b", []string{"docs"}, false)
		require.NoError(t, err)
		require.Len(t, res2.Points, 1)
		require.Equal(t, on(t, reps, bravo.Host).UpdatedAt, on(t, replicasOf(ctx, t, m, docs), bravo.Host).UpdatedAt)
		require.NoError(t, a.Demote(ctx, "k3/demote-after", "share-a", []string{"docs"}), "the replica on share-a is no longer active")

		st, err := a.ReplicationStatus(ctx, []string{"docs"})
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicaActive, stateOf(st, "share-b"))
	})

	t.Run("resync the old active, and resync of the active answers 200", func(t *testing.T) {
		old := on(t, replicasOf(ctx, t, m, docs), alpha.Host)
		// Put it out_of_sync (an admin's reset, as after an outage), so
		// that Manila's resync has something to change.
		_, err := m.Do(ctx, http.MethodPost, "/share-replicas/"+old.ID+"/action", "2.73", map[string]any{"reset_replica_state": map[string]string{"replica_state": "out_of_sync"}}, nil)
		require.NoError(t, err)
		st, err := a.ReplicationStatus(ctx, []string{"docs"})
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicaOutOfSync, stateOf(st, "share-a"))

		res, err := a.Resync(ctx, "k4/resync", "share-a", []string{"docs"})
		require.NoError(t, err)
		require.Empty(t, res.Discarded, "Manila does not say what a resync discarded")
		seen := []string{"out_of_sync"}
		require.Eventually(t, func() bool {
			s := on(t, replicasOf(ctx, t, m, docs), alpha.Host).State
			if s != seen[len(seen)-1] {
				seen = append(seen, s)
			}
			return s == "in_sync"
		}, 60*time.Second, 100*time.Millisecond)
		t.Logf("replica_state of the resynced replica went %s", strings.Join(seen, " -> "))

		// Manila answers resync of the active replica with 200 (nothing
		// to do), where gophercloud's replicas.Resync wants 202.
		active := on(t, replicasOf(ctx, t, m, docs), bravo.Host)
		code, err := m.Do(ctx, http.MethodPost, "/share-replicas/"+active.ID+"/action", "2.73", map[string]any{"resync": nil}, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		pc := &gophercloud.ProviderClient{}
		pc.SetToken(m.Token)
		sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: m.Endpoint, Type: "shared-file-system", Microversion: "2.73"}
		err = replicas.Resync(ctx, sc, active.ID).ExtractErr()
		require.True(t, gophercloud.ResponseCodeIs(err, http.StatusOK), "gophercloud's replicas.Resync takes Manila's 200 for an error: %v", err)
		_, err = a.Resync(ctx, "k4/resync-active", "share-b", []string{"docs"})
		require.NoError(t, err, "the adapter takes the 200 as done")
	})

	t.Run("microversions: a cap below 2.11 is a clear error; Zed has no quiesce_wait_time", func(t *testing.T) {
		minV, maxV, usable, err := a.ShareMicroversions(ctx, "site-b")
		require.NoError(t, err)
		require.Equal(t, []string{"2.0", "2.73", "2.73"}, []string{minV, maxV, usable}, "2.73 < 2.75: promote goes without quiesce_wait_time")

		old := newManilaAdapter(t, m, "2.10")
		minV, maxV, usable, err = old.ShareMicroversions(ctx, "site-a")
		require.NoError(t, err)
		require.Equal(t, []string{"2.0", "2.73", "2.10"}, []string{minV, maxV, usable})
		const why = "needs Manila API microversion 2.11; shared_file_system_api_version in clouds.yaml caps it at 2.10 (the endpoint supports up to 2.73)"
		_, err = old.Promote(ctx, "k5/promote", "share-a", []string{"docs"}, false)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "promoting a share replica "+why)
		err = old.EnableReplication(ctx, "k5/enable", "share-a", "share-b", []string{"logs"})
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), why)
		_, err = old.ReplicationStatus(ctx, []string{"docs"})
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), why)
		caps, err := old.Capabilities(ctx, "share-b")
		require.NoError(t, err)
		require.Equal(t, drivers.Capabilities{}, caps, "no replication below 2.11")
		require.Len(t, replicasOf(ctx, t, m, logs), 1, "nothing was created")

		// From 2.11 to 2.55 the replicas API is experimental: it answers
		// only with X-OpenStack-Manila-API-Experimental, which the adapter
		// sends there.
		exp := newManilaAdapter(t, m, "2.11")
		want, err := a.ReplicationStatus(ctx, []string{"docs"})
		require.NoError(t, err)
		got, err := exp.ReplicationStatus(ctx, []string{"docs"})
		require.NoError(t, err)
		require.Equal(t, want, got)
		caps, err = exp.Capabilities(ctx, "share-b")
		require.NoError(t, err)
		require.Equal(t, drivers.Capabilities{Replication: true, TestFailover: true}, caps)
	})

	t.Run("drill clone from the replicated snapshot", func(t *testing.T) {
		// The active replica is on share-b now; the drill clones at site-a.
		clones, err := a.TestFailoverStart(ctx, "k6/drill", "share-a", []string{"docs"})
		require.NoError(t, err)
		require.Len(t, clones, 1)
		var c struct {
			Share struct {
				Name             string `json:"name"`
				Status           string `json:"status"`
				Host             string `json:"host"`
				AvailabilityZone string `json:"availability_zone"`
				SnapshotID       string `json:"snapshot_id"`
			} `json:"share"`
		}
		_, err = m.Do(ctx, http.MethodGet, "/shares/"+clones[0], "2.73", nil, &c)
		require.NoError(t, err)
		require.Equal(t, "available", c.Share.Status)
		require.Equal(t, alpha.Zone, c.Share.AvailabilityZone)
		require.True(t, strings.HasPrefix(c.Share.Host, alpha.Host+"#"), c.Share.Host)
		require.True(t, strings.HasPrefix(c.Share.Name, "ferry-drill-"), c.Share.Name)
		require.Len(t, snapshotInstances(ctx, t, m, c.Share.SnapshotID), 2, "the clone's snapshot is a replicated one")
		again, err := a.TestFailoverStart(ctx, "k6/drill", "share-a", []string{"docs"})
		require.NoError(t, err)
		require.Equal(t, clones, again)
		require.Equal(t, 1, countShares(ctx, t, m, "ferry-drill-"), "one clone, also after the repeated key")

		require.NoError(t, a.TestFailoverStop(ctx, "k6/stop", "share-a", clones))
		code, err := m.Do(ctx, http.MethodGet, "/shares/"+clones[0], "2.73", nil, nil)
		require.Error(t, err)
		require.Equal(t, http.StatusNotFound, code)
		code, err = m.Do(ctx, http.MethodGet, "/snapshots/"+c.Share.SnapshotID, "2.73", nil, nil)
		require.Error(t, err)
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, 0, countShares(ctx, t, m, "ferry-drill-"))
		require.Len(t, replicasOf(ctx, t, m, docs), 2, "replication goes on")

		err = a.TestFailoverStop(ctx, "k6/stop-docs", "share-a", []string{docs})
		require.True(t, drivers.IsPermanent(err), "a share that is no drill clone is not deleted: %v", err)
		require.Len(t, replicasOf(ctx, t, m, docs), 2)
	})

	t.Run("disable replication deletes the secondary, never the active", func(t *testing.T) {
		err := a.DisableReplication(ctx, "k7/refuse", "share-b", []string{"docs"})
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "is the active one")
		require.Len(t, replicasOf(ctx, t, m, docs), 2)

		require.NoError(t, a.DisableReplication(ctx, "k7/disable", "share-a", []string{"docs"}))
		reps := replicasOf(ctx, t, m, docs)
		require.Len(t, reps, 1)
		require.Equal(t, bravo.Host, hostOf(reps[0].Host))
		require.Equal(t, "active", reps[0].State)
		require.NoError(t, a.DisableReplication(ctx, "k7/disable-again", "share-a", []string{"docs"}), "nothing left to remove")
	})

	t.Run("what Manila has no equivalent for says so", func(t *testing.T) {
		for name, err := range map[string]error{
			"freeze":                 a.Freeze(ctx, "k9/freeze", "share-a"),
			"fence":                  a.Fence(ctx, "k9/fence", "share-a", 7),
			"suspend":                a.SuspendReplication(ctx, "k9/suspend", "share-a", []string{"docs"}),
			"resume":                 a.ResumeReplication(ctx, "k9/resume", "share-a", []string{"docs"}),
			"set_replication_status": a.SetReplicationStatus(ctx, "k9/status", "share-a", ferry.ReplicationFailedOver, ""),
		} {
			require.True(t, drivers.IsPermanent(err), "%s: %v", name, err)
			require.Contains(t, err.Error(), "share backend share-a: Manila", name)
		}
		// failover_completed is Cinder's message to cluster members; for a
		// share backend it checks the member's manila-share, by its host
		// or its host@backend, as Manila shows it.
		member, _, _ := strings.Cut(alpha.Host, "@")
		require.NoError(t, a.FailoverCompleted(ctx, "k9/completed", "share-a", member, ""))
		require.NoError(t, a.FailoverCompleted(ctx, "k9/completed-full", "share-a", alpha.Host, ""))
		err := a.FailoverCompleted(ctx, "k9/completed-nobody", "share-a", "nobody", "")
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "nobody is no manila-share service")
		// Nothing was frozen or fenced, so there is nothing to undo.
		require.NoError(t, a.Thaw(ctx, "k9/thaw", "share-a"))
		require.NoError(t, a.Unfence(ctx, "k9/unfence", "share-a", 7))
	})

	t.Run("an unreachable site: status says so, promote fails typed and fast", func(t *testing.T) {
		require.NoError(t, a.EnableReplication(ctx, "k8/enable-docs", "share-b", "share-a", []string{"docs"}))
		require.NoError(t, a.EnableReplication(ctx, "k8/enable-logs", "share-a", "share-b", []string{"logs"}))
		m.StopShare(t, "alpha")
		require.Eventually(t, func() bool {
			st, err := a.BackendStatus(ctx, "share-a")
			return err == nil && !st.Reachable
		}, m.ServiceDownTime+30*time.Second, 500*time.Millisecond, "Manila marks manila-share down after service_down_time")
		svcs, err := m.Services(ctx)
		require.NoError(t, err)
		for _, s := range svcs {
			if s.Host == alpha.Host {
				require.Equal(t, "down", s.State)
			}
		}

		// The secondary of docs is on the stopped backend.
		start := time.Now()
		_, err = a.Promote(ctx, "k8/promote-docs", "share-a", []string{"docs"}, true)
		require.Error(t, err)
		require.Equal(t, drivers.Unreachable, drivers.Kind(err), "%v", err)
		require.Less(t, time.Since(start), 10*time.Second, "no hang")
		require.Equal(t, "active", on(t, replicasOf(ctx, t, m, docs), bravo.Host).State, "nothing was promoted")

		// logs is active on the stopped backend: a planned promote to
		// share-b needs it; a forced one goes on.
		_, err = a.Promote(ctx, "k8/promote-logs", "share-b", []string{"logs"}, false)
		require.Equal(t, drivers.Unreachable, drivers.Kind(err), "%v", err)
		res, err := a.Promote(ctx, "k8/force-logs", "share-b", []string{"logs"}, true)
		require.NoError(t, err, "a forced promote goes on without the old active's site")
		require.Len(t, res.Points, 1)
		reps := replicasOf(ctx, t, m, logs)
		require.Equal(t, "active", on(t, reps, bravo.Host).State)
		old := on(t, reps, alpha.Host)
		require.NotEqual(t, "active", old.State)
		t.Logf("after a forced promote, the old active on the stopped %s shows status %s, replica_state %s", alpha.Host, old.Status, old.State)

		// The old site returns: Manila treats its replica as a secondary
		// of the new active (the driver's periodic update), not as a
		// second active.
		m.StartShare(t, "alpha")
		st, err := a.BackendStatus(ctx, "share-a")
		require.NoError(t, err)
		require.True(t, st.Reachable)
		require.Eventually(t, func() bool {
			reps := replicasOf(ctx, t, m, logs)
			return on(t, reps, bravo.Host).State == "active" && on(t, reps, alpha.Host).State == "in_sync"
		}, 60*time.Second, 500*time.Millisecond)
		_, err = a.Resync(ctx, "k8/resync-logs", "share-a", []string{"logs"})
		require.NoError(t, err, "reprotect's resync of the returned site")
	})
}

// newManilaAdapter points an adapter at m: site-a and site-b are the same
// Manila (replication stays within one deployment), the sites' backends
// its two zones.
func newManilaAdapter(t *testing.T, m *openstacktest.Manila, shareAPIVersion string) *openstack.Adapter {
	t.Helper()
	alpha, bravo := m.Backend("alpha"), m.Backend("bravo")
	a, err := openstack.New(openstack.Config{
		CloudsFile: m.CloudsYAML(t, "ferry-manila", shareAPIVersion),
		Sites: map[string]openstack.Site{
			"site-a": {Cloud: "ferry-manila"},
			"site-b": {Cloud: "ferry-manila"},
		},
		Backends: map[string]openstack.Backend{
			"share-a": {Site: "site-a", Service: openstack.ServiceShare, Host: alpha.Host, AvailabilityZone: alpha.Zone},
			"share-b": {Site: "site-b", Service: openstack.ServiceShare, Host: bravo.Host, AvailabilityZone: bravo.Zone},
		},
		StateDir:      t.TempDir(),
		SettleTimeout: 90 * time.Second,
	})
	require.NoError(t, err)
	return a
}

// makeShare creates a 1 GB NFS share of the replicated type in zone and
// waits until Manila has it available.
func makeShare(ctx context.Context, t *testing.T, m *openstacktest.Manila, name, zone string) string {
	t.Helper()
	var created struct {
		Share struct {
			ID string `json:"id"`
		} `json:"share"`
	}
	_, err := m.Do(ctx, http.MethodPost, "/shares", "2.73", map[string]any{"share": map[string]any{
		"name": name, "share_proto": "NFS", "size": 1, "share_type": m.ShareType, "availability_zone": zone,
	}}, &created)
	require.NoError(t, err)
	var last string
	require.Eventually(t, func() bool {
		var s struct {
			Share struct {
				Status string `json:"status"`
			} `json:"share"`
		}
		if _, err := m.Do(ctx, http.MethodGet, "/shares/"+created.Share.ID, "2.73", nil, &s); err != nil {
			last = err.Error()
			return false
		}
		last = s.Share.Status
		require.NotEqual(t, "error", last, "share %s: %s", name, m.LogTail(20))
		return last == "available"
	}, 90*time.Second, 300*time.Millisecond, "share %s: %s", name, func() string { return last })
	return created.Share.ID
}

type rawReplica struct {
	ID               string `json:"id"`
	Host             string `json:"host"`
	AvailabilityZone string `json:"availability_zone"`
	Status           string `json:"status"`
	State            string `json:"replica_state"`
	UpdatedAt        string `json:"updated_at"`
}

func replicasOf(ctx context.Context, t *testing.T, m *openstacktest.Manila, shareID string) []rawReplica {
	t.Helper()
	var r struct {
		Replicas []rawReplica `json:"share_replicas"`
	}
	_, err := m.Do(ctx, http.MethodGet, "/share-replicas/detail?share_id="+shareID, "2.73", nil, &r)
	require.NoError(t, err)
	sort.Slice(r.Replicas, func(i, j int) bool { return r.Replicas[i].Host < r.Replicas[j].Host })
	return r.Replicas
}

func hostOf(host string) string {
	h, _, _ := strings.Cut(host, "#")
	return h
}

// on is the one replica on host (host@backend).
func on(t *testing.T, reps []rawReplica, host string) rawReplica {
	t.Helper()
	for _, r := range reps {
		if hostOf(r.Host) == host {
			return r
		}
	}
	t.Fatalf("no replica on %s in %+v", host, reps)
	return rawReplica{}
}

func stateOf(st []drivers.ReplicaStatus, backend string) string {
	for _, r := range st {
		if r.Backend == backend {
			return r.State
		}
	}
	return ""
}

// snapshotInstances lists a snapshot's instances (admin API, 2.19+).
func snapshotInstances(ctx context.Context, t *testing.T, m *openstacktest.Manila, snapshotID string) []map[string]any {
	t.Helper()
	var r struct {
		Instances []map[string]any `json:"snapshot_instances"`
	}
	_, err := m.Do(ctx, http.MethodGet, "/snapshot-instances/detail?snapshot_id="+snapshotID, "2.73", nil, &r)
	require.NoError(t, err)
	return r.Instances
}

func snapshotsOf(ctx context.Context, t *testing.T, m *openstacktest.Manila, shareID string) []map[string]any {
	t.Helper()
	var r struct {
		Snapshots []map[string]any `json:"snapshots"`
	}
	_, err := m.Do(ctx, http.MethodGet, "/snapshots/detail?share_id="+shareID, "2.73", nil, &r)
	require.NoError(t, err)
	return r.Snapshots
}

// countShares counts the shares whose name starts with prefix.
func countShares(ctx context.Context, t *testing.T, m *openstacktest.Manila, prefix string) int {
	t.Helper()
	var r struct {
		Shares []struct {
			Name string `json:"name"`
		} `json:"shares"`
	}
	_, err := m.Do(ctx, http.MethodGet, "/shares/detail?all_tenants=1", "2.73", nil, &r)
	require.NoError(t, err)
	n := 0
	for _, s := range r.Shares {
		if strings.HasPrefix(s.Name, prefix) {
			n++
		}
	}
	return n
}
