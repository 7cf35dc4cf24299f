package openstack_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/openstack"
	"github.com/ferrydr/ferry/drivers/openstack/openstacktest"
)

// TestCinderGroups runs Cinder's group replication (3.38+) and group
// snapshots (3.14+) through the adapter against real Cinder: one
// standalone cinder-volume ("solo") with one replication_device ("dr1"),
// the fake driver in openstacktest/testdata doing what a group-capable
// replication driver tells Cinder. Every outcome is read back from Cinder's
// own API, not from the adapter.
func TestCinderGroups(t *testing.T) {
	c := openstacktest.StartCinder(t, openstacktest.CinderOptions{Standalone: []string{"solo"}})
	a := groupAdapter(t, c, "")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// The scheduler places a group only once solo's stats reached it;
	// they also say what the fake driver can do with groups.
	var caps map[string]any
	require.Eventually(t, func() bool {
		var r struct {
			Pools []struct {
				Name         string         `json:"name"`
				Capabilities map[string]any `json:"capabilities"`
			} `json:"pools"`
		}
		mustDo(ctx, t, c, http.MethodGet, "/scheduler-stats/get_pools?detail=true", "", nil, &r)
		for _, p := range r.Pools {
			if p.Name == c.Hosts[0]+"#solo" {
				caps = p.Capabilities
			}
		}
		return caps != nil
	}, time.Minute, 200*time.Millisecond, "the scheduler never heard of solo's pool")
	require.Equal(t, true, caps["consistent_group_replication_enabled"])
	require.Equal(t, true, caps["group_replication_enabled"])
	require.Equal(t, true, caps["replication_enabled"])

	// A replication group type, a replicated volume type on solo, and
	// groups of it: g1 with two volumes, two one-volume groups that the
	// failure cases break, and a volume of the type in no group.
	mustDo(ctx, t, c, http.MethodPost, "/types", "", map[string]any{"volume_type": map[string]any{"name": "type-grp",
		"extra_specs": map[string]string{"volume_backend_name": "solo", "replication_enabled": "<is> True"}}}, nil)
	mustDo(ctx, t, c, http.MethodPost, "/group_types", "3.11", map[string]any{"group_type": map[string]any{"name": "gtype-repl",
		"group_specs": map[string]string{"consistent_group_replication_enabled": "<is> True"}}}, nil)
	g1 := makeGroup(ctx, t, c, "g1")
	gv1, gv2 := makeGroupVolume(ctx, t, c, "gv1", g1), makeGroupVolume(ctx, t, c, "gv2", g1)
	gRaw := makeGroup(ctx, t, c, "g-raw")
	rv1 := makeGroupVolume(ctx, t, c, "rv1", gRaw)
	gDown := makeGroup(ctx, t, c, "g-down")
	makeGroupVolume(ctx, t, c, "dv1", gDown)
	makeGroupVolume(ctx, t, c, "loner", "")
	both := []string{"gv1", "gv2"}
	failovers := func(g string) int { return c.Count("failover_replication of group " + g) }

	t.Run("targets and enable replication", func(t *testing.T) {
		targets, err := a.ListReplicationTargets(ctx, "solo", "gv1")
		require.NoError(t, err)
		require.Equal(t, []string{"dr1"}, targets)
		targets, err = a.ListReplicationTargets(ctx, "solo-dr", "gv2")
		require.NoError(t, err)
		require.Equal(t, []string{"dr1"}, targets)

		require.Equal(t, "disabled", readGroup(ctx, t, c, g1).ReplicationStatus, "Cinder creates a replication group disabled")
		require.NoError(t, a.EnableReplication(ctx, "e1", "solo", "solo-dr", both))
		require.Equal(t, "available enabled", readGroup(ctx, t, c, g1).state())
		require.Equal(t, "enabled", readVolume(ctx, t, c, gv1).ReplicationStatus)
		require.Equal(t, "enabled", readVolume(ctx, t, c, gv2).ReplicationStatus)
		enables := c.Count("enable_replication of group " + g1)
		require.Equal(t, 1, enables)
		require.NoError(t, a.EnableReplication(ctx, "e2", "solo", "solo-dr", both), "an enabled group is left as it is")
		require.Equal(t, enables, c.Count("enable_replication of group "+g1))

		require.NoError(t, a.EnableReplication(ctx, "e3", "solo", "solo-dr", []string{"rv1"}))
		require.NoError(t, a.EnableReplication(ctx, "e4", "solo", "solo-dr", []string{"dv1"}))

		err = a.EnableReplication(ctx, "e5", "solo-dr", "solo", both)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "solo-dr is a replication target of solo")
	})

	t.Run("promote to the target and fail back", func(t *testing.T) {
		require.NoError(t, a.Demote(ctx, "d1", "solo", both), "Cinder has no demote: a checked no-op")
		require.Equal(t, 0, failovers(g1))
		reps, err := a.Sync(ctx, "s1", "solo", both)
		require.NoError(t, err)
		require.Equal(t, []string{"gv1 solo active", "gv1 solo-dr in_sync", "gv2 solo active", "gv2 solo-dr in_sync"}, replicaStates(reps))

		res, err := a.Promote(ctx, "p1", "solo-dr", both, false)
		require.NoError(t, err)
		require.Len(t, res.Points, 2)
		for i, p := range res.Points {
			require.Equal(t, both[i], p.Resource)
			require.Equal(t, int64(-1), p.LostWrites, "Cinder cannot tell what a failover lost")
		}
		require.Equal(t, "available failed-over", readGroup(ctx, t, c, g1).state())
		require.Equal(t, "failed-over", readVolume(ctx, t, c, gv1).ReplicationStatus)
		require.Equal(t, "failed-over", readVolume(ctx, t, c, gv2).ReplicationStatus)
		require.Equal(t, 1, failovers(g1))

		// Another key: the group is where it should be, nothing is sent.
		again, err := a.Promote(ctx, "p2", "solo-dr", both, true)
		require.NoError(t, err)
		require.Len(t, again.Points, 2)
		require.Equal(t, 1, failovers(g1), "no second failover_replication")
		// The same key: the ledger's answer.
		replay, err := a.Promote(ctx, "p1", "solo-dr", both, false)
		require.NoError(t, err)
		require.Equal(t, res, replay)

		reps, err = a.Sync(ctx, "s2", "solo-dr", both)
		require.NoError(t, err)
		require.Equal(t, []string{"gv1 solo-dr active", "gv1 solo out_of_sync", "gv2 solo-dr active", "gv2 solo out_of_sync"}, replicaStates(reps))

		// No reprotect in Cinder: it refuses disabling a failed-over group.
		code, err := c.Do(ctx, http.MethodPost, "/groups/"+g1+"/action", "3.38", map[string]any{"disable_replication": map[string]any{}}, nil)
		require.Equal(t, http.StatusBadRequest, code, "%v", err)
		// So a failback's resync sends nothing (the driver brings the
		// data home when the group fails back) and cannot count what it
		// discards.
		disables := c.Count("disable_replication")
		rs, err := a.Resync(ctx, "r1", "solo", both)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"gv1": -1, "gv2": -1}, rs.Discarded)
		require.Equal(t, disables, c.Count("disable_replication"), "resync sent nothing")
		require.Equal(t, "available failed-over", readGroup(ctx, t, c, g1).state())
		err = a.DisableReplication(ctx, "x1", "solo-dr", both)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "fail it back first")
		require.Equal(t, "available failed-over", readGroup(ctx, t, c, g1).state())

		_, err = a.Promote(ctx, "p3", "solo", both, false)
		require.NoError(t, err)
		require.Equal(t, "available enabled", readGroup(ctx, t, c, g1).state())
		require.Equal(t, "enabled", readVolume(ctx, t, c, gv1).ReplicationStatus)
		require.Equal(t, "enabled", readVolume(ctx, t, c, gv2).ReplicationStatus)
		require.Equal(t, 2, failovers(g1))
		require.True(t, c.Grep("failover_replication of group "+g1+" to default"))

		// Undoing a demote that never happened moves nothing.
		_, err = a.Promote(ctx, "p4", "solo", both, false)
		require.NoError(t, err)
		require.Equal(t, 2, failovers(g1))
		res2, err := a.Resync(ctx, "r2", "solo-dr", both)
		require.NoError(t, err, "the target of an enabled group follows already")
		require.Equal(t, map[string]int64{"gv1": -1, "gv2": -1}, res2.Discarded)
	})

	t.Run("what Cinder cannot do is refused before anything moves", func(t *testing.T) {
		_, err := a.Promote(ctx, "q1", "solo-dr", []string{"gv1"}, false)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "also holds gv2")
		_, err = a.Promote(ctx, "q2", "solo-dr", []string{"loner"}, false)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "loner in no volume group")
		_, err = a.Promote(ctx, "q3", "solo-dr", []string{"nope"}, false)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), `no volume "nope" on backend solo`)
		_, err = a.Promote(ctx, "q4", "solo-nowhere", both, false)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), `Cinder lists dr1 as the replication targets of group `+g1)
		require.Equal(t, "available enabled", readGroup(ctx, t, c, g1).state(), "nothing was sent")
		require.Equal(t, 2, failovers(g1))

		err = a.Fence(ctx, "f1", "solo", 7)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "Cinder cannot fence solo")
		require.NoError(t, a.Unfence(ctx, "f2", "solo", 7), "nothing fenced, nothing to lift")
	})

	t.Run("an unknown backend_id: Cinder answers 202 and breaks the group", func(t *testing.T) {
		// Why the adapter checks the target first: sent raw, Cinder takes
		// any id, and the driver's refusal leaves the group and its
		// volumes in error.
		code, err := c.Do(ctx, http.MethodPost, "/groups/"+gRaw+"/action", "3.38", map[string]any{"failover_replication": map[string]any{"secondary_backend_id": "nowhere-raw"}}, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code)
		require.Eventually(t, func() bool { return readGroup(ctx, t, c, gRaw).state() == "error error" }, 60*time.Second, 200*time.Millisecond)
		require.Equal(t, "error", readVolume(ctx, t, c, rv1).Status)
		require.True(t, c.Grep("nowhere-raw is not a replication_device backend_id"), "the driver refused it")

		_, err = a.Promote(ctx, "u1", "solo-dr", []string{"rv1"}, true)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "status error, replication_status error")
	})

	t.Run("a driver failing after the 202 is read back", func(t *testing.T) {
		c.TargetDown(t, "dr1", true)
		defer c.TargetDown(t, "dr1", false)
		_, err := a.Promote(ctx, "v1", "solo-dr", []string{"dv1"}, true)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), `Cinder accepted failing group `+gDown+` (g-down) over to "dr1" (202), but cinder-volume's driver failed`)
		require.Equal(t, "error error", readGroup(ctx, t, c, gDown).state())
	})

	t.Run("group snapshot and drill copy", func(t *testing.T) {
		snap, err := a.SnapshotGroup(ctx, "gs1", "solo", both)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"gv1": 0, "gv2": 0}, snap.Seqs, "every volume covered; Cinder has no sequence numbers")
		gs := readGroupSnapshot(ctx, t, c, snap.ID)
		require.Equal(t, "available", gs.Status)
		require.Equal(t, g1, gs.GroupID)
		_, err = a.SnapshotGroup(ctx, "gs2", "solo-dr", both)
		require.True(t, drivers.IsPermanent(err), "a snapshot is taken where the group is served: %v", err)

		// A drill at the target's site (site-b) while the group is active
		// at solo (site-a): Cinder would copy at site-a. Refused, before
		// anything is made.
		countGroups := func() int {
			var out struct {
				Groups []struct{} `json:"groups"`
			}
			mustDo(ctx, t, c, http.MethodGet, "/groups", "3.14", nil, &out)
			return len(out.Groups)
		}
		groupsBefore := countGroups()
		_, err = a.TestFailoverStart(ctx, "t0", "solo-dr", []string{"gv2", "gv1"})
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "Cinder has no call that copies a replica at its replication target")
		require.Equal(t, groupsBefore, countGroups(), "nothing was made")

		clones, err := a.TestFailoverStart(ctx, "t1", "solo", []string{"gv2", "gv1"})
		require.NoError(t, err)
		require.Len(t, clones, 2)
		var drill string
		for i, src := range []string{gv2, gv1} {
			v := readVolume(ctx, t, c, clones[i])
			require.Equal(t, "available", v.Status)
			require.NotEqual(t, g1, v.GroupID)
			drill = v.GroupID
			var s struct {
				Snapshot struct {
					VolumeID string `json:"volume_id"`
				} `json:"snapshot"`
			}
			mustDo(ctx, t, c, http.MethodGet, "/snapshots/"+v.SnapshotID, "3.14", nil, &s)
			require.Equal(t, src, s.Snapshot.VolumeID, "clone %d is of the volume asked for at %d", i, i)
		}
		dg := readGroup(ctx, t, c, drill)
		require.Equal(t, "available disabled", dg.state(), "the copy does not replicate")
		require.True(t, strings.HasPrefix(dg.Name, "ferry-drill-"), dg.Name)
		same, err := a.TestFailoverStart(ctx, "t1", "solo", []string{"gv2", "gv1"})
		require.NoError(t, err)
		require.Equal(t, clones, same)

		err = a.TestFailoverStop(ctx, "t2", "solo", []string{gv1})
		require.True(t, drivers.IsPermanent(err), "production is never deleted: %v", err)
		require.Contains(t, err.Error(), "no drill copy of Ferry's")

		require.NoError(t, a.TestFailoverStop(ctx, "t3", "solo", clones))
		for _, id := range append([]string{"/groups/" + drill, "/group_snapshots/" + dg.GroupSnapshotID}, "/volumes/"+clones[0], "/volumes/"+clones[1]) {
			code, _ := c.Do(ctx, http.MethodGet, id, "3.14", nil, nil)
			require.Equal(t, http.StatusNotFound, code, id)
		}
		require.NoError(t, a.TestFailoverStop(ctx, "t4", "solo", clones), "what is gone counts as deleted")
		require.Equal(t, "available enabled", readGroup(ctx, t, c, g1).state())
	})

	t.Run("suspend, resume and disable", func(t *testing.T) {
		require.NoError(t, a.SuspendReplication(ctx, "w1", "solo", both))
		require.Equal(t, "available disabled", readGroup(ctx, t, c, g1).state())
		require.Equal(t, "disabled", readVolume(ctx, t, c, gv1).ReplicationStatus)
		_, err := a.Promote(ctx, "w2", "solo-dr", both, false)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "is disabled")
		err = a.Demote(ctx, "w3", "solo", both)
		require.True(t, drivers.IsPermanent(err), "no replica would take over: %v", err)
		_, err = a.Sync(ctx, "w4", "solo", both)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		// A resync of the target starts replicating into it again.
		res, err := a.Resync(ctx, "w5", "solo-dr", both)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"gv1": -1, "gv2": -1}, res.Discarded, "Cinder does not say what a resync discarded")
		require.Equal(t, "available enabled", readGroup(ctx, t, c, g1).state())
		_, err = a.Resync(ctx, "w6", "solo", both)
		require.True(t, drivers.IsPermanent(err), "the service's volumes are the active ones: %v", err)

		require.NoError(t, a.SuspendReplication(ctx, "w7", "solo", both))
		require.Equal(t, "available disabled", readGroup(ctx, t, c, g1).state())
		require.NoError(t, a.ResumeReplication(ctx, "w8", "solo", both))
		require.Equal(t, "available enabled", readGroup(ctx, t, c, g1).state())
		require.Equal(t, "enabled", readVolume(ctx, t, c, gv2).ReplicationStatus)

		require.NoError(t, a.DisableReplication(ctx, "w9", "solo-dr", both))
		require.Equal(t, "available disabled", readGroup(ctx, t, c, g1).state())
		require.Equal(t, "disabled", readVolume(ctx, t, c, gv1).ReplicationStatus)
		require.Equal(t, "disabled", readVolume(ctx, t, c, gv2).ReplicationStatus)
		require.NoError(t, a.DisableReplication(ctx, "w10", "solo-dr", both), "a disabled group is left as it is")
	})

	t.Run("a microversion cap below 3.38 is a clear error", func(t *testing.T) {
		old := groupAdapter(t, c, "3.37")
		_, err := old.Promote(ctx, "m1", "solo-dr", both, false)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "failing a volume group over (failover_replication) needs Cinder API microversion 3.38; volume_api_version in clouds.yaml caps it at 3.37 (the endpoint supports up to 3.70)")
		err = old.EnableReplication(ctx, "m2", "solo", "solo-dr", both)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "needs Cinder API microversion 3.38; volume_api_version in clouds.yaml caps it at 3.37")
		_, err = old.ListReplicationTargets(ctx, "solo", "gv1")
		require.True(t, drivers.IsPermanent(err), "%v", err)
		// Group snapshots need only 3.14.
		snap, err := old.SnapshotGroup(ctx, "m3", "solo", both)
		require.NoError(t, err)
		require.Equal(t, "available", readGroupSnapshot(ctx, t, c, snap.ID).Status)
	})
}

// groupAdapter points an adapter at c: "solo" is the cinder-volume service
// at site-a, "solo-dr" its replication_device dr1 at site-b (the same
// Cinder answers for both: in Cinder's model the secondary is behind the
// primary's service), "solo-nowhere" a target Cinder does not have.
func groupAdapter(t *testing.T, c *openstacktest.Cinder, volumeAPIVersion string) *openstack.Adapter {
	t.Helper()
	clouds := c.CloudsYAML(t, "ferry-a", "RegionOne", volumeAPIVersion)
	a, err := openstack.New(openstack.Config{
		CloudsFile: clouds,
		Sites: map[string]openstack.Site{
			"site-a": {Cloud: "ferry-a", Region: "RegionOne"},
			"site-b": {Cloud: "ferry-a", Region: "RegionOne"},
		},
		Backends: map[string]openstack.Backend{
			"solo":         {Site: "site-a", Host: c.Hosts[0]},
			"solo-dr":      {Site: "site-b", TargetOf: "solo", BackendID: "dr1"},
			"solo-nowhere": {Site: "site-b", TargetOf: "solo", BackendID: "nowhere"},
		},
		StateDir:      t.TempDir(),
		SettleTimeout: 2 * time.Minute,
	})
	require.NoError(t, err)
	return a
}

func mustDo(ctx context.Context, t *testing.T, c *openstacktest.Cinder, method, path, microversion string, body, out any) {
	t.Helper()
	_, err := c.Do(ctx, method, path, microversion, body, out)
	require.NoError(t, err)
}

// makeGroup creates a group of the replication group type and waits until
// Cinder has it available.
func makeGroup(ctx context.Context, t *testing.T, c *openstacktest.Cinder, name string) string {
	t.Helper()
	var created struct {
		Group struct {
			ID string `json:"id"`
		} `json:"group"`
	}
	mustDo(ctx, t, c, http.MethodPost, "/groups", "3.13", map[string]any{"group": map[string]any{"name": name, "group_type": "gtype-repl", "volume_types": []string{"type-grp"}}}, &created)
	require.Eventually(t, func() bool {
		st := readGroup(ctx, t, c, created.Group.ID).Status
		require.NotEqual(t, "error", st, "group %s: %s", name, c.LogTail(20))
		return st == "available"
	}, 2*time.Minute, 200*time.Millisecond, "group %s", name)
	return created.Group.ID
}

// makeGroupVolume creates a 1 GB volume of the replicated type, in group
// (if set), and waits until it is available.
func makeGroupVolume(ctx context.Context, t *testing.T, c *openstacktest.Cinder, name, group string) string {
	t.Helper()
	vol := map[string]any{"name": name, "size": 1, "volume_type": "type-grp"}
	if group != "" {
		vol["group_id"] = group
	}
	var created struct {
		Volume struct {
			ID string `json:"id"`
		} `json:"volume"`
	}
	mustDo(ctx, t, c, http.MethodPost, "/volumes", "3.13", map[string]any{"volume": vol}, &created)
	require.Eventually(t, func() bool {
		st := readVolume(ctx, t, c, created.Volume.ID).Status
		require.NotEqual(t, "error", st, "volume %s: %s", name, c.LogTail(20))
		return st == "available"
	}, 2*time.Minute, 200*time.Millisecond, "volume %s", name)
	return created.Volume.ID
}

type rawGroup struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Status            string `json:"status"`
	ReplicationStatus string `json:"replication_status"`
	GroupSnapshotID   string `json:"group_snapshot_id"`
}

func (g rawGroup) state() string { return g.Status + " " + g.ReplicationStatus }

func readGroup(ctx context.Context, t *testing.T, c *openstacktest.Cinder, id string) rawGroup {
	t.Helper()
	var r struct {
		Group rawGroup `json:"group"`
	}
	mustDo(ctx, t, c, http.MethodGet, "/groups/"+id, "3.38", nil, &r)
	return r.Group
}

type rawVolume struct {
	Status            string `json:"status"`
	ReplicationStatus string `json:"replication_status"`
	GroupID           string `json:"group_id"`
	SnapshotID        string `json:"snapshot_id"`
}

func readVolume(ctx context.Context, t *testing.T, c *openstacktest.Cinder, id string) rawVolume {
	t.Helper()
	var r struct {
		Volume rawVolume `json:"volume"`
	}
	mustDo(ctx, t, c, http.MethodGet, "/volumes/"+id, "3.13", nil, &r)
	return r.Volume
}

type rawGroupSnapshot struct {
	Status  string `json:"status"`
	GroupID string `json:"group_id"`
}

func readGroupSnapshot(ctx context.Context, t *testing.T, c *openstacktest.Cinder, id string) rawGroupSnapshot {
	t.Helper()
	var r struct {
		GroupSnapshot rawGroupSnapshot `json:"group_snapshot"`
	}
	mustDo(ctx, t, c, http.MethodGet, "/group_snapshots/"+id, "3.14", nil, &r)
	return r.GroupSnapshot
}

func replicaStates(reps []drivers.ReplicaStatus) []string {
	out := make([]string, len(reps))
	for i, r := range reps {
		out[i] = r.Resource + " " + r.Backend + " " + r.State
	}
	return out
}
