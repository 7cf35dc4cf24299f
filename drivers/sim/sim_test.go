package sim_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
)

// clock is a controllable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	siteA, siteB = "site-a", "site-b"
	cinderA      = "cinder-a"
	cinderB      = "cinder-b"
	manilaA      = "manila-a"
	manilaB      = "manila-b"
	dbVol        = "db-vol"
	webVol       = "web-vol"
	files        = "files"
	shopHost     = "shop.example.com"
	primaryIP    = "10.0.0.10"
	drIP         = "10.1.0.10"
)

func inventory() ferry.Inventory {
	return ferry.Inventory{
		Sites: []ferry.Site{{Name: siteA}, {Name: siteB}},
		Backends: []ferry.Backend{
			{Name: cinderA, Site: siteA, Type: "cinder", Members: []string{"host-a1", "host-a2"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "b", Backend: cinderB}}},
			{Name: cinderB, Site: siteB, Type: "cinder", Members: []string{"host-b1"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "a", Backend: cinderA}}},
			{Name: manilaA, Site: siteA, Type: "manila", ReplicationTargets: []ferry.ReplicationTarget{{ID: "b", Backend: manilaB}}},
			{Name: manilaB, Site: siteB, Type: "manila"},
		},
		Groups: []ferry.Group{{
			Name: "shop", PrimarySite: siteA, DRSite: siteB, RPOSeconds: 60,
			Volumes: []ferry.Volume{{Name: dbVol, Backend: cinderA}, {Name: webVol, Backend: cinderA}},
			Shares:  []ferry.Share{{Name: files, Backend: manilaA}},
			Tiers: []ferry.Tier{
				{Name: "db", Servers: []ferry.Server{{Name: "db-1", Volumes: []string{dbVol}, Networks: []string{"prod-net"}}}},
				{Name: "web", Servers: []ferry.Server{{Name: "web-1", Volumes: []string{webVol}, Networks: []string{"prod-net"}}}},
			},
			NetworkMappings: []ferry.NetworkMapping{{Production: "prod-net", DR: "dr-net", Test: "test-net"}},
			DNSRecords:      []ferry.DNSRecord{{Name: shopHost, Type: "A", TTL: 60, Primary: primaryIP, DR: drIP}},
		}},
	}
}

// blogInventory adds a second group on the same backends.
func blogInventory() ferry.Inventory {
	inv := inventory()
	g := &inv.Groups[0]
	g.Name = "blog"
	g.Volumes = []ferry.Volume{{Name: "blog-vol", Backend: cinderA}}
	g.Shares = nil
	g.Tiers = []ferry.Tier{{Name: "all", Servers: []ferry.Server{{Name: "blog-1", Volumes: []string{"blog-vol"}}}}}
	g.DNSRecords = nil
	return inv
}

var vols = []string{dbVol, webVol}

type env struct {
	cloud  *sim.Cloud
	clock  *clock
	client *sim.Client
}

func newEnv(t *testing.T, inProcess bool, mod func(*sim.Options)) *env {
	t.Helper()
	clk := newClock()
	opts := sim.Options{Now: clk.Now}
	if mod != nil {
		mod(&opts)
	}
	cloud := sim.NewCloud(opts)
	var client *sim.Client
	if inProcess {
		client = sim.NewInProcess(cloud)
	} else {
		srv := httptest.NewServer(sim.NewHandler(cloud))
		t.Cleanup(srv.Close)
		client = sim.NewClient(srv.URL, srv.Client())
	}
	require.NoError(t, client.LoadInventory(context.Background(), inventory()))
	return &env{cloud: cloud, clock: clk, client: client}
}

// both runs a test against a real HTTP server and in-process: the two must
// behave the same.
func both(t *testing.T, mod func(*sim.Options), fn func(t *testing.T, e *env)) {
	t.Run("http", func(t *testing.T) { fn(t, newEnv(t, false, mod)) })
	t.Run("in-process", func(t *testing.T) { fn(t, newEnv(t, true, mod)) })
}

func requireKind(t *testing.T, err error, kind, op string) *drivers.Error {
	t.Helper()
	require.Error(t, err)
	var de *drivers.Error
	require.True(t, errors.As(err, &de), "want *drivers.Error, got %T: %v", err, err)
	require.Equal(t, kind, de.Kind, "error: %v", err)
	if op != "" {
		require.Equal(t, op, de.Op)
	}
	return de
}

func info(t *testing.T, e *env, name string) sim.ResourceInfo {
	t.Helper()
	ri, err := e.client.ResourceInfo(context.Background(), name)
	require.NoError(t, err)
	return ri
}

func replicaAt(t *testing.T, ri sim.ResourceInfo, site string) sim.ReplicaInfo {
	t.Helper()
	for _, r := range ri.Replicas {
		if r.Site == site {
			return r
		}
	}
	require.FailNow(t, "no replica at "+site)
	return sim.ReplicaInfo{}
}

func stateOf(t *testing.T, e *env) sim.State {
	t.Helper()
	st, err := e.client.State(context.Background())
	require.NoError(t, err)
	return st
}

func resourceState(t *testing.T, st sim.State, name, site string) sim.ReplicaState {
	t.Helper()
	for _, r := range st.Resources {
		if r.Name != name {
			continue
		}
		for _, rep := range r.Replicas {
			if rep.Site == site {
				return rep
			}
		}
	}
	require.FailNow(t, "no replica of "+name+" at "+site)
	return sim.ReplicaState{}
}

func backendState(t *testing.T, st sim.State, name string) sim.BackendState {
	t.Helper()
	for _, b := range st.Backends {
		if b.Name == name {
			return b
		}
	}
	require.FailNow(t, "no backend "+name)
	return sim.BackendState{}
}

// plannedFailover takes the shop group to site-b the planned way and returns
// the promote result.
func plannedFailover(t *testing.T, e *env) drivers.PromoteResult {
	t.Helper()
	ctx := context.Background()
	c := e.client
	require.NoError(t, c.Quiesce(ctx, "pf/quiesce", siteA, []string{"db-1", "web-1"}))
	snap, err := c.SnapshotGroup(ctx, "pf/snap", cinderA, vols)
	require.NoError(t, err)
	_, err = c.Sync(ctx, "pf/sync", cinderA, vols)
	require.NoError(t, err)
	for _, v := range vols {
		require.Equal(t, snap.Seqs[v], replicaAt(t, info(t, e, v), siteB).Seq, "sync must bring %s to the snapshot", v)
	}
	require.NoError(t, c.Stop(ctx, "pf/stop", siteA, []string{"db-1", "web-1"}))
	require.NoError(t, c.Demote(ctx, "pf/demote", cinderA, vols))
	res, err := c.Promote(ctx, "pf/promote", cinderB, vols, false)
	require.NoError(t, err)
	return res
}

func TestBannerAndHeader(t *testing.T) {
	srv := httptest.NewServer(sim.NewHandler(sim.NewCloud(sim.Options{})))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "true", resp.Header.Get(sim.SimulatorHeader))
	require.Contains(t, string(body), "SIMULATED")

	resp2, err := http.Post(srv.URL+"/v1/storage/promote", "application/json", nil)
	require.NoError(t, err)
	resp2.Body.Close()
	require.Equal(t, "true", resp2.Header.Get(sim.SimulatorHeader))
	require.Equal(t, http.StatusConflict, resp2.StatusCode)
}

func TestLoadInventoryAndState(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		st := stateOf(t, e)
		require.Equal(t, []sim.SiteState{{Name: siteA, Up: true}, {Name: siteB, Up: true}}, st.Sites)
		require.Equal(t, sim.BackendState{Name: cinderA, Site: siteA, ReplicationStatus: ferry.ReplicationEnabled,
			Members: []sim.MemberState{{Name: "host-a1"}, {Name: "host-a2"}}}, backendState(t, st, cinderA))
		require.Equal(t, ferry.ReplicationNotCapable, backendState(t, st, manilaB).ReplicationStatus)
		require.Equal(t, []sim.MemberState{{Name: manilaB}}, backendState(t, st, manilaB).Members)
		for _, r := range []string{dbVol, webVol, files} {
			require.Equal(t, sim.RoleActive, resourceState(t, st, r, siteA).Role)
			require.True(t, resourceState(t, st, r, siteA).Writable)
			require.Equal(t, sim.RoleSecondary, resourceState(t, st, r, siteB).Role)
			require.False(t, resourceState(t, st, r, siteB).Writable)
		}
		require.Equal(t, []sim.ServerState{
			{Site: siteA, Name: "db-1", State: drivers.ServerRunning},
			{Site: siteA, Name: "web-1", State: drivers.ServerRunning},
		}, st.Servers)
		require.Equal(t, []sim.NetworkState{{Site: siteA, Name: "prod-net"}}, st.Networks)
		require.Equal(t, []drivers.Record{{Name: shopHost, Type: "A", TTL: 60, Value: primaryIP}}, st.Records)

		rs, err := e.client.ReplicationStatus(ctx, []string{dbVol})
		require.NoError(t, err)
		require.Len(t, rs, 2)
		require.Equal(t, ferry.ReplicaActive, rs[0].State)
		require.Equal(t, ferry.ReplicaInSync, rs[1].State)

		// Loading again changes nothing; a bigger inventory only adds.
		require.NoError(t, e.client.LoadInventory(ctx, inventory()))
		require.Equal(t, st, stateOf(t, e))
		require.NoError(t, e.client.LoadInventory(ctx, blogInventory()))
		st2 := stateOf(t, e)
		require.Len(t, st2.Resources, len(st.Resources)+1)
		require.Len(t, st2.Servers, len(st.Servers)+1)

		bad := inventory()
		bad.Backends = append(bad.Backends, ferry.Backend{Name: "x", Site: "nowhere"})
		requireKind(t, e.client.LoadInventory(ctx, bad), drivers.Permanent, "sim.load_inventory")
	})
}

func TestLagIsAppliedLazily(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		require.NoError(t, e.client.SetLag(ctx, cinderA, 10*time.Second))
		seq, err := e.client.Write(ctx, dbVol, 3)
		require.NoError(t, err)
		require.EqualValues(t, 3, seq)
		e.clock.Advance(5 * time.Second)
		_, err = e.client.Write(ctx, dbVol, 2)
		require.NoError(t, err)

		ri := info(t, e, dbVol)
		require.EqualValues(t, 5, ri.ActiveSeq)
		require.EqualValues(t, 0, replicaAt(t, ri, siteB).Seq, "nothing is 10s old yet")

		e.clock.Advance(5 * time.Second)
		require.EqualValues(t, 3, replicaAt(t, info(t, e, dbVol), siteB).Seq, "the first 3 writes are 10s old")
		rs, err := e.client.ReplicationStatus(ctx, []string{dbVol})
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicaInSync, rs[1].State)
		require.Equal(t, 5*time.Second, rs[1].Lag, "the oldest unapplied write is 5s old")

		e.clock.Advance(5 * time.Second)
		require.EqualValues(t, 5, replicaAt(t, info(t, e, dbVol), siteB).Seq)

		// A lag beyond the RPO makes the replica out_of_sync.
		require.NoError(t, e.client.SetLag(ctx, cinderA, 5*time.Minute))
		_, err = e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)
		e.clock.Advance(61 * time.Second)
		rs, err = e.client.ReplicationStatus(ctx, []string{dbVol})
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicaOutOfSync, rs[1].State)
		require.EqualValues(t, 5, rs[1].Seq)
	})
}

func TestPartitionFreezesAppliedSeq(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.client.Write(ctx, dbVol, 5)
		require.NoError(t, err)
		require.EqualValues(t, 5, replicaAt(t, info(t, e, dbVol), siteB).Seq)

		require.NoError(t, e.client.SetPartition(ctx, siteA, siteB, true))
		_, err = e.client.Write(ctx, dbVol, 3)
		require.NoError(t, err)
		e.clock.Advance(30 * time.Second)
		ri := info(t, e, dbVol)
		require.EqualValues(t, 8, ri.ActiveSeq)
		require.EqualValues(t, 5, replicaAt(t, ri, siteB).Seq)
		require.Equal(t, ferry.ReplicaInSync, replicaAt(t, ri, siteB).State, "30s behind is within the 60s RPO")
		_, err = e.client.Sync(ctx, "sync-partitioned", cinderA, []string{dbVol})
		requireKind(t, err, drivers.Unreachable, "storage.sync")

		e.clock.Advance(31 * time.Second)
		require.Equal(t, ferry.ReplicaOutOfSync, replicaAt(t, info(t, e, dbVol), siteB).State)

		require.NoError(t, e.client.SetPartition(ctx, siteA, siteB, false))
		ri = info(t, e, dbVol)
		require.EqualValues(t, 8, replicaAt(t, ri, siteB).Seq)
		require.Equal(t, ferry.ReplicaInSync, replicaAt(t, ri, siteB).State)

		// A down DR site freezes its replica too, and shows as error.
		require.NoError(t, e.client.SetSiteDown(ctx, siteB, true))
		_, err = e.client.Write(ctx, dbVol, 2)
		require.NoError(t, err)
		ri = info(t, e, dbVol)
		require.EqualValues(t, 8, replicaAt(t, ri, siteB).Seq)
		require.Equal(t, ferry.ReplicaError, replicaAt(t, ri, siteB).State)
		require.NoError(t, e.client.SetSiteDown(ctx, siteB, false))
		require.EqualValues(t, 10, replicaAt(t, info(t, e, dbVol), siteB).Seq)
	})
}

func TestPlannedFailoverLosesNothing(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		require.NoError(t, e.client.SetLag(ctx, cinderA, 30*time.Second))
		for _, v := range vols {
			_, err := e.client.Write(ctx, v, 10)
			require.NoError(t, err)
		}
		e.clock.Advance(time.Second)
		require.EqualValues(t, 0, replicaAt(t, info(t, e, dbVol), siteB).Seq, "the lag holds everything back")

		res := plannedFailover(t, e)
		require.Len(t, res.Points, 2)
		for _, p := range res.Points {
			require.EqualValues(t, 10, p.Seq)
			require.Zero(t, p.LostWrites)
			require.Zero(t, p.DataLoss)
		}
		for _, v := range vols {
			ri := info(t, e, v)
			require.Equal(t, siteB, ri.ActiveSite)
			require.EqualValues(t, 10, ri.ActiveSeq)
			require.Zero(t, ri.LostWrites)
		}
		st := stateOf(t, e)
		require.Equal(t, sim.ReplicaState{Site: siteA, Backend: cinderA, Role: sim.RoleSecondary}, resourceState(t, st, dbVol, siteA))
		require.Equal(t, sim.ReplicaState{Site: siteB, Backend: cinderB, Role: sim.RoleActive, Writable: true}, resourceState(t, st, dbVol, siteB))

		// The old primary now follows the new active.
		_, err := e.client.Write(ctx, dbVol, 2)
		require.NoError(t, err)
		e.clock.Advance(30 * time.Second)
		require.EqualValues(t, 12, replicaAt(t, info(t, e, dbVol), siteA).Seq)
	})
}

func TestPlannedPromoteCarriesWritesAfterTheFinalSync(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		require.NoError(t, e.client.SetLag(ctx, cinderA, time.Hour))
		_, err := e.client.Write(ctx, dbVol, 4)
		require.NoError(t, err)
		_, err = e.client.Sync(ctx, "late/sync", cinderA, []string{dbVol})
		require.NoError(t, err)
		// A crash-consistent guest writes after the final sync, then is
		// demoted: the planned promote must still carry those writes.
		_, err = e.client.Write(ctx, dbVol, 3)
		require.NoError(t, err)
		require.NoError(t, e.client.Demote(ctx, "late/demote", cinderA, []string{dbVol}))
		res, err := e.client.Promote(ctx, "late/promote", cinderB, []string{dbVol}, false)
		require.NoError(t, err)
		require.EqualValues(t, 7, res.Points[0].Seq)
		require.Zero(t, res.Points[0].LostWrites)
		require.Zero(t, info(t, e, dbVol).LostWrites)
	})
}

func TestDemotedPrimaryRefusesWritesAndPromoteNeedsDemote(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.client.Promote(ctx, "p1", cinderB, []string{dbVol}, false)
		de := requireKind(t, err, drivers.Permanent, "storage.promote")
		require.Contains(t, de.Error(), "demote first or force")

		require.NoError(t, e.client.Demote(ctx, "d1", cinderA, []string{dbVol}))
		_, err = e.client.Write(ctx, dbVol, 1)
		require.Contains(t, requireKind(t, err, drivers.Permanent, "sim.write").Error(), "read-only")

		// Promoting the demoted replica again is how a rollback undoes a demote.
		res, err := e.client.Promote(ctx, "undo-d1", cinderA, []string{dbVol}, false)
		require.NoError(t, err)
		require.Zero(t, res.Points[0].LostWrites)
		_, err = e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)
	})
}

func TestForcedPromoteReportsLostWrites(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		require.NoError(t, e.client.SetLag(ctx, cinderA, 10*time.Second))
		_, err := e.client.Write(ctx, dbVol, 5)
		require.NoError(t, err)
		e.clock.Advance(20 * time.Second)
		_, err = e.client.Write(ctx, dbVol, 3) // these 3 never reach site-b
		require.NoError(t, err)
		require.NoError(t, e.client.SetSiteDown(ctx, siteA, true))
		e.clock.Advance(time.Minute)

		requireKind(t, e.client.Demote(ctx, "d", cinderA, []string{dbVol}), drivers.Unreachable, "storage.demote")
		require.NoError(t, e.client.Fence(ctx, "fence", cinderA, 1), "fencing works out of band on a down site")

		res, err := e.client.Promote(ctx, "force", cinderB, []string{dbVol}, true)
		require.NoError(t, err)
		require.Equal(t, []drivers.PromotedPoint{{Resource: dbVol, Seq: 5, At: newClock().Now(), LostWrites: 3, DataLoss: 20 * time.Second}}, res.Points)

		ri := info(t, e, dbVol)
		require.EqualValues(t, 3, ri.LostWrites)
		require.Equal(t, siteB, ri.ActiveSite)
		require.EqualValues(t, 5, ri.ActiveSeq)

		// The old primary comes back: it is neither active nor writable, even
		// once unfenced.
		require.NoError(t, e.client.SetSiteDown(ctx, siteA, false))
		require.NoError(t, e.client.Unfence(ctx, "unfence", cinderA, 1))
		st := stateOf(t, e)
		require.Equal(t, sim.ReplicaState{Site: siteA, Backend: cinderA, Role: sim.RoleSecondary, Diverged: true}, resourceState(t, st, dbVol, siteA))
		_, err = e.client.WriteAt(ctx, dbVol, siteA, 1)
		require.Contains(t, requireKind(t, err, drivers.Permanent, "sim.write").Error(), "read-only")
		seq, err := e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)
		require.EqualValues(t, 6, seq, "writes go to the new active")
		ri = info(t, e, dbVol)
		require.EqualValues(t, 8, replicaAt(t, ri, siteA).Seq, "the diverged replica keeps its writes until resync")
		require.Equal(t, ferry.ReplicaError, replicaAt(t, ri, siteA).State)

		// Reprotect: resync discards the 3 diverged writes and follows again.
		_, err = e.client.Promote(ctx, "back", cinderA, []string{dbVol}, true)
		require.Contains(t, requireKind(t, err, drivers.Permanent, "storage.promote").Error(), "diverged")
		rs, err := e.client.Resync(ctx, "resync", cinderA, []string{dbVol})
		require.NoError(t, err)
		require.EqualValues(t, 3, rs.Discarded[dbVol])
		ri = info(t, e, dbVol)
		require.EqualValues(t, 3, ri.DiscardedWrites)
		require.EqualValues(t, 6, replicaAt(t, ri, siteA).Seq)
		require.Equal(t, ferry.ReplicaInSync, replicaAt(t, ri, siteA).State)
		require.False(t, resourceState(t, stateOf(t, e), dbVol, siteA).Diverged)
	})
}

func TestFenceBlocksWritesUntilUnfencedWithSameEpoch(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		require.NoError(t, e.client.SetSiteDown(ctx, siteA, true))
		require.NoError(t, e.client.Fence(ctx, "f7", cinderA, 7))
		requireKind(t, e.client.Unfence(ctx, "u-down", cinderA, 7), drivers.Unreachable, "storage.unfence")
		require.NoError(t, e.client.SetSiteDown(ctx, siteA, false))

		_, err := e.client.Write(ctx, dbVol, 1)
		require.Contains(t, requireKind(t, err, drivers.Permanent, "sim.write").Error(), "fenced")
		require.False(t, resourceState(t, stateOf(t, e), dbVol, siteA).Writable)
		bs, err := e.client.BackendStatus(ctx, cinderA)
		require.NoError(t, err)
		require.True(t, bs.Fenced)
		require.EqualValues(t, 7, bs.FenceEpoch)

		requireKind(t, e.client.Unfence(ctx, "u6", cinderA, 6), drivers.Permanent, "storage.unfence")
		require.NoError(t, e.client.Unfence(ctx, "u7", cinderA, 7))
		_, err = e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)
	})
}

func TestIdempotencyKeys(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, err := e.client.Write(ctx, dbVol, 4)
		require.NoError(t, err)

		snap1, err := e.client.SnapshotGroup(ctx, "run1/snap", cinderA, vols)
		require.NoError(t, err)
		_, err = e.client.Write(ctx, dbVol, 1)
		require.NoError(t, err)
		snap2, err := e.client.SnapshotGroup(ctx, "run1/snap", cinderA, vols)
		require.NoError(t, err)
		require.Equal(t, snap1, snap2, "a replayed key returns the first result")
		require.EqualValues(t, 4, snap2.Seqs[dbVol])

		clones1, err := e.client.TestFailoverStart(ctx, "run1/clone", cinderB, vols)
		require.NoError(t, err)
		clones2, err := e.client.TestFailoverStart(ctx, "run1/clone", cinderB, vols)
		require.NoError(t, err)
		require.Equal(t, clones1, clones2)
		require.Len(t, stateOf(t, e).Clones, 2, "a replay creates nothing")

		require.NoError(t, e.client.Demote(ctx, "run1/demote", cinderA, vols))
		require.NoError(t, e.client.Demote(ctx, "run1/demote", cinderA, vols))
		p1, err := e.client.Promote(ctx, "run1/promote", cinderB, vols, false)
		require.NoError(t, err)
		before := stateOf(t, e)
		p2, err := e.client.Promote(ctx, "run1/promote", cinderB, vols, false)
		require.NoError(t, err)
		require.Equal(t, p1, p2)
		require.Equal(t, before, stateOf(t, e))

		// A key reused for another operation is refused, not replayed.
		err = e.client.Freeze(ctx, "run1/promote", cinderA)
		requireKind(t, err, drivers.Permanent, "storage.freeze")
		require.False(t, backendState(t, stateOf(t, e), cinderA).Frozen)

		ledger, err := e.client.Ledger(ctx)
		require.NoError(t, err)
		outcomes := map[string][]string{}
		for _, le := range ledger {
			outcomes[le.Key] = append(outcomes[le.Key], le.Outcome)
		}
		require.Equal(t, []string{sim.OutcomeApplied, sim.OutcomeReplayed}, outcomes["run1/snap"])
		require.Equal(t, []string{sim.OutcomeApplied, sim.OutcomeReplayed}, outcomes["run1/demote"])
		require.Equal(t, []string{sim.OutcomeApplied, sim.OutcomeReplayed, sim.OutcomeFailed}, outcomes["run1/promote"])
		requireExactlyOnce(t, ledger)
	})
}

func requireExactlyOnce(t *testing.T, ledger []sim.LedgerEntry) {
	t.Helper()
	applied := map[string]int{}
	for _, le := range ledger {
		if le.Outcome == sim.OutcomeApplied && le.Key != "" {
			applied[le.Key]++
			require.Equal(t, 1, applied[le.Key], "key %s applied twice", le.Key)
		}
	}
}

func TestFaults(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client

		// N times, then success; a failing call applies nothing.
		_, err := c.InjectFault(ctx, sim.Fault{Op: "storage.freeze", Target: cinderA, Times: 2})
		require.NoError(t, err)
		for range 2 {
			requireKind(t, c.Freeze(ctx, "freeze", cinderA), drivers.Retryable, "storage.freeze")
			require.False(t, backendState(t, stateOf(t, e), cinderA).Frozen)
		}
		require.NoError(t, c.Freeze(ctx, "freeze", cinderA))
		require.True(t, backendState(t, stateOf(t, e), cinderA).Frozen)
		require.NoError(t, c.Freeze(ctx, "freeze-b", cinderB), "the fault targets cinder-a only")

		// Always, until cleared.
		_, err = c.InjectFault(ctx, sim.Fault{Op: "dns.replace", Kind: drivers.Permanent})
		require.NoError(t, err)
		rec := drivers.Record{Name: shopHost, Type: "A", TTL: 30, Value: drIP}
		for range 3 {
			requireKind(t, c.Replace(ctx, "dns", rec), drivers.Permanent, "dns.replace")
		}
		r, err := c.Get(ctx, shopHost, "A")
		require.NoError(t, err)
		require.Equal(t, primaryIP, r.Value)
		require.NoError(t, c.ClearFaults(ctx))
		require.NoError(t, c.Replace(ctx, "dns", rec))
		r, err = c.Get(ctx, shopHost, "A")
		require.NoError(t, err)
		require.Equal(t, rec, r)

		ledger, err := c.Ledger(ctx)
		require.NoError(t, err)
		var freeze []string
		for _, le := range ledger {
			if le.Key == "freeze" {
				freeze = append(freeze, le.Outcome)
				require.Equal(t, cinderA, le.Target)
			}
		}
		require.Equal(t, []string{sim.OutcomeFailed, sim.OutcomeFailed, sim.OutcomeApplied}, freeze)
		requireExactlyOnce(t, ledger)

		// Latency honours the caller's context.
		_, err = c.InjectFault(ctx, sim.Fault{Op: "compute.health", Latency: time.Minute})
		require.NoError(t, err)
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = c.Health(tctx, siteA, []string{"db-1"})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 10*time.Second)

		// Latency alone does not fail the call.
		require.NoError(t, c.ClearFaults(ctx))
		_, err = c.InjectFault(ctx, sim.Fault{Op: "compute.health", Latency: time.Millisecond})
		require.NoError(t, err)
		h, err := c.Health(ctx, siteA, []string{"db-1"})
		require.NoError(t, err)
		require.True(t, h[0].Healthy)

		// An injected Unreachable keeps its kind across the wire.
		_, err = c.InjectFault(ctx, sim.Fault{Op: "storage.promote", Kind: drivers.Unreachable})
		require.NoError(t, err)
		_, err = c.Promote(ctx, "promote", cinderB, vols, true)
		requireKind(t, err, drivers.Unreachable, "storage.promote")
		require.Equal(t, siteA, info(t, e, dbVol).ActiveSite)
	})
}

func TestSiteDownIsUnreachable(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client
		require.NoError(t, c.SetSiteDown(ctx, siteA, true))
		_, err := c.BackendStatus(ctx, cinderA)
		requireKind(t, err, drivers.Unreachable, "storage.backend_status")
		requireKind(t, c.Demote(ctx, "d", cinderA, vols), drivers.Unreachable, "storage.demote")
		requireKind(t, c.Stop(ctx, "s", siteA, []string{"db-1"}), drivers.Unreachable, "compute.stop")
		_, err = c.Health(ctx, siteA, []string{"db-1"})
		requireKind(t, err, drivers.Unreachable, "compute.health")
		requireKind(t, c.MapNetworks(ctx, "m", siteA, nil), drivers.Unreachable, "network.map_networks")
		_, err = c.Write(ctx, dbVol, 1)
		requireKind(t, err, drivers.Unreachable, "sim.write")
		_, err = c.Check(ctx, siteA, "", drivers.CheckSpec{Name: "db", Type: "sql"})
		requireKind(t, err, drivers.Unreachable, "verify.check")

		// The other site still answers, and reports the replicas at site-a
		// as error rather than failing.
		rs, err := c.ReplicationStatus(ctx, []string{dbVol})
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicaError, rs[0].State)
		_, err = c.BackendStatus(ctx, cinderB)
		require.NoError(t, err)
	})
}

func TestSimulatorItselfUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := sim.NewClient(url, nil)
	_, err := c.Capabilities(context.Background(), cinderA)
	requireKind(t, err, drivers.Unreachable, "storage.capabilities")
}

func TestFailoverCompletedPerMember(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client
		_, err := c.InjectFault(ctx, sim.Fault{Op: "storage.failover_completed", Target: "host-a2", Kind: drivers.Unreachable})
		require.NoError(t, err)
		require.NoError(t, c.FailoverCompleted(ctx, "fc/host-a1", cinderA, "host-a1", "b"))
		for range 3 {
			requireKind(t, c.FailoverCompleted(ctx, "fc/host-a2", cinderA, "host-a2", "b"), drivers.Unreachable, "storage.failover_completed")
		}
		requireKind(t, c.FailoverCompleted(ctx, "fc/ghost", cinderA, "ghost", "b"), drivers.Permanent, "storage.failover_completed")

		bs, err := c.BackendStatus(ctx, cinderA)
		require.NoError(t, err)
		require.Equal(t, []drivers.MemberStatus{{Name: "host-a1", ActiveBackendID: "b", Up: true}, {Name: "host-a2", Up: true}}, bs.Members)

		require.NoError(t, c.ClearFaults(ctx))
		require.NoError(t, c.FailoverCompleted(ctx, "fc/host-a2", cinderA, "host-a2", "b"))
		require.NoError(t, c.SetReplicationStatus(ctx, "rs", cinderA, ferry.ReplicationFailedOver, "b"))
		requireKind(t, c.SetReplicationStatus(ctx, "rs-bad", cinderA, "sideways", "b"), drivers.Permanent, "")
		require.Equal(t, sim.BackendState{Name: cinderA, Site: siteA, ReplicationStatus: ferry.ReplicationFailedOver, ActiveBackendID: "b",
			Members: []sim.MemberState{{Name: "host-a1", ActiveBackendID: "b"}, {Name: "host-a2", ActiveBackendID: "b"}}},
			backendState(t, stateOf(t, e), cinderA))

		ledger, err := c.Ledger(ctx)
		require.NoError(t, err)
		var targets []string
		for _, le := range ledger {
			if le.Op == "storage.failover_completed" && le.Outcome == sim.OutcomeApplied {
				targets = append(targets, le.Target)
			}
		}
		require.Equal(t, []string{cinderA + "/host-a1", cinderA + "/host-a2"}, targets)
	})
}

func TestBootNeedsActiveVolumesAndTakesBootTime(t *testing.T) {
	both(t, func(o *sim.Options) { o.BootTime = 30 * time.Second }, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client
		specs := []drivers.BootSpec{{Name: "db-1", Volumes: []string{dbVol}, Networks: []string{"dr-net"}}}
		err := c.Boot(ctx, "boot-early", siteB, specs)
		require.Contains(t, requireKind(t, err, drivers.Permanent, "compute.boot").Error(), "volume db-vol is not active at site site-b")
		h, err := c.Health(ctx, siteB, []string{"db-1"})
		require.NoError(t, err)
		require.Equal(t, drivers.ServerAbsent, h[0].State, "a failed boot creates nothing")

		plannedFailover(t, e)
		require.NoError(t, c.Boot(ctx, "boot", siteB, specs))
		h, err = c.Health(ctx, siteB, []string{"db-1"})
		require.NoError(t, err)
		require.Equal(t, []drivers.ServerHealth{{Name: "db-1", Site: siteB, State: drivers.ServerBooting}}, h)
		e.clock.Advance(29 * time.Second)
		h, err = c.Health(ctx, siteB, []string{"db-1"})
		require.NoError(t, err)
		require.False(t, h[0].Healthy)
		e.clock.Advance(time.Second)
		h, err = c.Health(ctx, siteB, []string{"db-1"})
		require.NoError(t, err)
		require.Equal(t, []drivers.ServerHealth{{Name: "db-1", Site: siteB, State: drivers.ServerRunning, Healthy: true}}, h)

		// Stopped servers at the old site restart through booting.
		require.NoError(t, c.Start(ctx, "restart", siteA, []string{"db-1"}))
		h, err = c.Health(ctx, siteA, []string{"db-1"})
		require.NoError(t, err)
		require.Equal(t, drivers.ServerBooting, h[0].State)
		requireKind(t, c.Quiesce(ctx, "q", siteA, []string{"db-1"}), drivers.Permanent, "compute.quiesce")
	})
}

func TestVerifyHTTPNeedsDNSAndHealthyServers(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client
		check := drivers.CheckSpec{Name: "shop", Type: "http", Target: "https://" + shopHost + "/health", Expect: "200"}
		pass := func(site string) (bool, string) {
			t.Helper()
			r, err := c.Check(ctx, site, "", check)
			require.NoError(t, err)
			require.Equal(t, "shop", r.Name)
			return r.Passed, r.Detail
		}
		ok, _ := pass(siteA)
		require.True(t, ok, "production serves at site-a")
		ok, detail := pass(siteB)
		require.False(t, ok)
		require.Contains(t, detail, "site-a")

		plannedFailover(t, e)
		require.NoError(t, c.MapNetworks(ctx, "map", siteB, []drivers.NetworkMapping{{From: "prod-net", To: "dr-net"}}))
		ok, _ = pass(siteA)
		require.False(t, ok, "primary servers are stopped")
		require.NoError(t, c.Boot(ctx, "boot", siteB, []drivers.BootSpec{
			{Name: "db-1", Volumes: []string{dbVol}, Networks: []string{"dr-net"}},
			{Name: "web-1", Volumes: []string{webVol}, Networks: []string{"dr-net"}},
		}))
		ok, detail = pass(siteB)
		require.False(t, ok, "DNS still points at site-a")
		require.Contains(t, detail, primaryIP)

		require.NoError(t, c.Replace(ctx, "dns", drivers.Record{Name: shopHost, Type: "A", TTL: 60, Value: drIP}))
		ok, detail = pass(siteB)
		require.True(t, ok, detail)

		tcp, err := c.Check(ctx, siteB, "", drivers.CheckSpec{Name: "tcp", Type: "tcp", Target: shopHost + ":443"})
		require.NoError(t, err)
		require.True(t, tcp.Passed, tcp.Detail)
		dns, err := c.Check(ctx, siteB, "", drivers.CheckSpec{Name: "dns", Type: "dns", Target: shopHost, Expect: drIP})
		require.NoError(t, err)
		require.True(t, dns.Passed)
		dns, err = c.Check(ctx, siteB, "", drivers.CheckSpec{Name: "dns", Type: "dns", Target: shopHost, Expect: primaryIP})
		require.NoError(t, err)
		require.False(t, dns.Passed)
		sql, err := c.Check(ctx, siteB, "", drivers.CheckSpec{Name: "db", Type: "sql", Target: "db"})
		require.NoError(t, err)
		require.True(t, sql.Passed)

		require.NoError(t, c.Stop(ctx, "stop-web", siteB, []string{"web-1"}))
		ok, detail = pass(siteB)
		require.False(t, ok)
		require.Contains(t, detail, "web-1 (stopped)")
	})
}

func TestWorkloadWritesOnlyForRunningUnquiescedServers(t *testing.T) {
	both(t, func(o *sim.Options) { o.WorkloadInterval = 2 * time.Millisecond }, func(t *testing.T, e *env) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := e.client
		require.NoError(t, c.LoadInventory(ctx, blogInventory()))
		e.cloud.StartWorkload(ctx)
		seq := func(r string) int64 { return info(t, e, r).ActiveSeq }
		require.Eventually(t, func() bool { return seq(dbVol) > 2 && seq(webVol) > 2 && seq(files) > 2 }, 5*time.Second, time.Millisecond)

		// db-1 quiesced: its volume stands still while web-1's keeps moving,
		// which proves the workload kept ticking.
		require.NoError(t, c.Quiesce(ctx, "q", siteA, []string{"db-1"}))
		db, web := seq(dbVol), seq(webVol)
		require.Eventually(t, func() bool { return seq(webVol) > web+3 }, 5*time.Second, time.Millisecond)
		require.Equal(t, db, seq(dbVol))

		// web-1 stopped, db-1 thawed: the other way round.
		require.NoError(t, c.Stop(ctx, "s", siteA, []string{"web-1"}))
		require.NoError(t, c.Unquiesce(ctx, "u", siteA, []string{"db-1"}))
		db, web = seq(dbVol), seq(webVol)
		require.Eventually(t, func() bool { return seq(dbVol) > db+3 }, 5*time.Second, time.Millisecond)
		require.Equal(t, web, seq(webVol))

		// Nobody of the shop group writes: its share stands still while the
		// blog group's volume shows the workload is still ticking.
		require.NoError(t, c.Quiesce(ctx, "q2", siteA, []string{"db-1"}))
		fs, blog := seq(files), seq("blog-vol")
		require.Eventually(t, func() bool { return seq("blog-vol") > blog+3 }, 5*time.Second, time.Millisecond)
		require.Equal(t, fs, seq(files))
	})
}

func TestNetworksBubblesAndClones(t *testing.T) {
	both(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.client
		before := stateOf(t, e)

		_, err := c.Write(ctx, dbVol, 4)
		require.NoError(t, err)
		require.NoError(t, c.SetPartition(ctx, siteA, siteB, true))
		_, err = c.Write(ctx, dbVol, 2)
		require.NoError(t, err)

		id, err := c.CreateBubble(ctx, "drill/bubble", siteB, "drill-shop")
		require.NoError(t, err)
		clones, err := c.TestFailoverStart(ctx, "drill/clones", cinderB, []string{dbVol})
		require.NoError(t, err)
		require.Len(t, clones, 1)
		st := stateOf(t, e)
		require.Equal(t, []sim.BubbleState{{ID: id, Site: siteB, Name: "drill-shop"}}, st.Bubbles)
		require.Equal(t, []sim.CloneState{{ID: clones[0], Resource: dbVol, Backend: cinderB, Seq: 4}}, st.Clones)

		require.NoError(t, c.Boot(ctx, "drill/boot", siteB, []drivers.BootSpec{{Name: "db-1", Volumes: clones, Networks: []string{id}}}))
		r, err := c.Check(ctx, siteB, id, drivers.CheckSpec{Name: "in-bubble", Type: "http", Target: "http://" + shopHost})
		require.NoError(t, err)
		require.False(t, r.Passed, "web-1 is not in the bubble")
		require.Contains(t, r.Detail, "web-1")

		require.NoError(t, c.TestFailoverStop(ctx, "drill/unclone", cinderB, clones))
		require.NoError(t, c.DestroyBubble(ctx, "drill/destroy", siteB, id))
		require.NoError(t, c.DestroyBubble(ctx, "drill/destroy-again", siteB, id))
		require.NoError(t, c.SetPartition(ctx, siteA, siteB, false))
		require.Equal(t, before, stateOf(t, e), "the drill leaves nothing behind")
		require.EqualValues(t, 6, replicaAt(t, info(t, e, dbVol), siteB).Seq, "replication carried on")

		require.NoError(t, c.MapNetworks(ctx, "map", siteB, []drivers.NetworkMapping{{From: "prod-net", To: "dr-net"}}))
		require.Contains(t, stateOf(t, e).Networks, sim.NetworkState{Site: siteB, Name: "dr-net"})
	})
}

// TestInProcessMatchesHTTP runs one scenario through both clients and holds
// their results against each other.
func TestInProcessMatchesHTTP(t *testing.T) {
	scenario := func(e *env) (sim.State, drivers.PromoteResult, []string) {
		ctx := context.Background()
		c := e.client
		_, _ = c.Write(ctx, dbVol, 7)
		_ = c.SetSiteDown(ctx, siteA, true)
		_ = c.Fence(ctx, "f", cinderA, 3)
		res, _ := c.Promote(ctx, "p", cinderB, vols, true)
		_ = c.Boot(ctx, "b", siteB, []drivers.BootSpec{{Name: "db-1", Volumes: []string{dbVol}}})
		_ = c.Boot(ctx, "b-bad", siteA, []drivers.BootSpec{{Name: "db-1", Volumes: []string{dbVol}}})
		ledger, _ := c.Ledger(ctx)
		var outcomes []string
		for _, le := range ledger {
			outcomes = append(outcomes, le.Op+":"+le.Outcome)
		}
		st, _ := c.State(ctx)
		return st, res, outcomes
	}
	s1, r1, l1 := scenario(newEnv(t, false, nil))
	s2, r2, l2 := scenario(newEnv(t, true, nil))
	require.Equal(t, s1, s2)
	require.Equal(t, r1, r2)
	require.Equal(t, l1, l2)
	require.Equal(t, []string{"storage.fence:applied", "storage.promote:applied", "compute.boot:applied", "compute.boot:failed"}, l1)
}
