package router_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/router"
	"github.com/ferrydr/ferry/drivers/sim"
)

// Two simulated clouds stand for two adapters: the demo's (the fallback)
// and a second one that owns the backends x-a and x-b and volume x-vol.
// Each keeps its own ledger, so a test sees where each call landed.
func twoClouds(t *testing.T) (main, other *sim.Cloud, st *router.Storage) {
	t.Helper()
	main = sim.NewCloud(sim.Options{})
	require.NoError(t, main.LoadInventory(demo.Inventory()))
	other = sim.NewCloud(sim.Options{})
	inv := ferry.Inventory{
		Sites: []ferry.Site{{Name: "site-a"}, {Name: "site-b"}},
		Backends: []ferry.Backend{
			{Name: "x-a", Site: "site-a", ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "x-b"}}},
			{Name: "x-b", Site: "site-b", ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-a", Backend: "x-a"}}},
		},
		Groups: []ferry.Group{{Name: "x", PrimarySite: "site-a", DRSite: "site-b", Volumes: []ferry.Volume{{Name: "x-vol", Backend: "x-a"}}}},
	}
	require.NoError(t, other.LoadInventory(inv))
	st = router.NewStorage(router.Of("sim", sim.NewInProcess(main).Set()))
	// The second adapter offers only the storage port: no replication
	// lifecycle, no host failover.
	require.NoError(t, st.Add(router.Adapter{Name: "other", Storage: sim.NewInProcess(other)},
		[]string{"x-a", "x-b"}, router.ResourcesOn(inv, "x-a", "x-b")))
	return main, other, st
}

func keysOf(l []sim.LedgerEntry) []string {
	var out []string
	for _, e := range l {
		out = append(out, e.Op+" "+e.Key+" "+e.Outcome)
	}
	return out
}

func TestStorageRoutesByBackendAndResource(t *testing.T) {
	ctx := context.Background()
	main, other, st := twoClouds(t)

	// Status splits the resources by owner and answers every replica.
	rs, err := st.ReplicationStatus(ctx, []string{"crm-db-data", "x-vol"})
	require.NoError(t, err)
	got := map[string]string{}
	for _, r := range rs {
		got[r.Resource+"@"+r.Backend] = r.State
	}
	require.Equal(t, map[string]string{
		"crm-db-data@a-block": ferry.ReplicaActive, "crm-db-data@b-block": ferry.ReplicaInSync,
		"x-vol@x-a": ferry.ReplicaActive, "x-vol@x-b": ferry.ReplicaInSync,
	}, got)

	// A mutating call lands on the owner only, under the caller's key.
	require.NoError(t, st.Demote(ctx, "k-demote-x", "x-a", []string{"x-vol"}))
	_, err = st.Promote(ctx, "k-promote-x", "x-b", []string{"x-vol"}, false)
	require.NoError(t, err)
	require.NoError(t, st.Freeze(ctx, "k-freeze-a", "a-block"))
	require.Equal(t, []string{"storage.demote k-demote-x applied", "storage.promote k-promote-x applied"}, keysOf(other.Ledger()))
	require.Equal(t, []string{"storage.freeze k-freeze-a applied"}, keysOf(main.Ledger()))

	// Again with the same key: the owner replays, nothing applies twice.
	_, err = st.Promote(ctx, "k-promote-x", "x-b", []string{"x-vol"}, false)
	require.NoError(t, err)
	require.Equal(t, "storage.promote k-promote-x replayed", keysOf(other.Ledger())[2])

	info, err := other.ResourceInfo("x-vol")
	require.NoError(t, err)
	require.Equal(t, "x-b", info.ActiveBackend)
	mainInfo, err := main.ResourceInfo("crm-db-data")
	require.NoError(t, err)
	require.Equal(t, "a-block", mainInfo.ActiveBackend, "the other cloud's failover touched the demo's")

	// Status reads the owner's truth through the router.
	bs, err := st.BackendStatus(ctx, "x-b")
	require.NoError(t, err)
	require.Equal(t, "site-b", bs.Site)
}

func TestStorageCapabilitiesAndErrors(t *testing.T) {
	ctx := context.Background()
	main, _, st := twoClouds(t)

	set := st.Set(sim.NewInProcess(main).Set())
	require.Same(t, st, set.Storage.(*router.Storage))
	require.NotNil(t, set.Replication, "the fallback can manage replication")
	require.NotNil(t, set.Host)

	// The fallback manages replication; the other adapter cannot, and says
	// so permanently instead of reaching the wrong cloud.
	require.NoError(t, st.SuspendReplication(ctx, "k-suspend", "a-block", []string{"crm-db-data"}))
	err := st.SuspendReplication(ctx, "k-suspend-x", "x-a", []string{"x-vol"})
	require.True(t, drivers.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "cannot manage replication")
	_, err = st.FailoverHost(ctx, "k-host-x", "x-a", "site-b")
	require.True(t, drivers.IsPermanent(err), "%v", err)

	// A name owned twice is refused.
	require.Error(t, st.Add(router.Adapter{Name: "again", Storage: sim.NewInProcess(main)}, []string{"x-a"}, nil))

	// Without a fallback, an unknown backend or resource is permanent.
	bare := router.NewStorage(router.Adapter{})
	_, err = bare.BackendStatus(ctx, "a-block")
	require.True(t, drivers.IsPermanent(err), "%v", err)
	_, err = bare.ReplicationStatus(ctx, []string{"crm-db-data"})
	require.True(t, drivers.IsPermanent(err), "%v", err)
	require.Nil(t, bare.Set(drivers.Set{}).Replication)

	// An unreachable owner's error comes back with the other replicas.
	_, other, st2 := twoClouds(t)
	require.NoError(t, other.SetSiteDown("site-a", true))
	require.NoError(t, other.SetSiteDown("site-b", true))
	other.InjectFault(sim.Fault{Op: "storage.replication_status", Kind: drivers.Unreachable})
	rs, err := st2.ReplicationStatus(ctx, []string{"x-vol", "crm-db-data"})
	require.Error(t, err)
	require.Equal(t, drivers.Unreachable, drivers.Kind(err))
	require.Len(t, rs, 2, "the demo's replicas still come back")
}

func TestTeeWritesEveryZone(t *testing.T) {
	ctx := context.Background()
	first, second := sim.NewCloud(sim.Options{}), sim.NewCloud(sim.Options{})
	tee := router.NewTee(router.Zone{Name: "first", DNS: first}, router.Zone{Name: "second", DNS: second})
	rec := drivers.Record{Name: "app.demo.example", Type: "A", TTL: 60, Value: "10.0.0.1"}
	for _, c := range []*sim.Cloud{first, second} {
		require.NoError(t, c.Replace(ctx, "", rec))
	}
	r, err := tee.Get(ctx, rec.Name, "A")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1", r.Value)

	// The second zone fails once: the write is not done, and Get says the
	// zones differ rather than answer the first's new value as if it were.
	second.InjectFault(sim.Fault{Op: "dns.replace", Times: 1})
	rec.Value = "10.0.0.2"
	err = tee.Replace(ctx, "k1", rec)
	require.Error(t, err)
	require.Equal(t, drivers.Retryable, drivers.Kind(err))
	require.ErrorContains(t, err, "applied on first only")
	_, err = tee.Get(ctx, rec.Name, "A")
	require.ErrorContains(t, err, "differs between zones")

	// The retry under the same key replays on the first, applies on the
	// second.
	require.NoError(t, tee.Replace(ctx, "k1", rec))
	require.Equal(t, []string{"dns.replace  applied", "dns.replace k1 applied", "dns.replace k1 replayed"}, keysOf(first.Ledger()))
	require.Equal(t, []string{"dns.replace  applied", "dns.replace k1 failed", "dns.replace k1 applied"}, keysOf(second.Ledger()))
	for _, c := range []*sim.Cloud{first, second} {
		got, err := c.Get(ctx, rec.Name, "A")
		require.NoError(t, err)
		require.Equal(t, "10.0.0.2", got.Value)
	}
	r, err = tee.Get(ctx, rec.Name, "A")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.2", r.Value)

	// A failing authoritative zone stops the write before any copy.
	first.InjectFault(sim.Fault{Op: "dns.replace", Times: 1, Kind: drivers.Permanent})
	rec.Value = "10.0.0.3"
	err = tee.Replace(ctx, "k2", rec)
	require.True(t, drivers.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "nothing changed")
	got, err := second.Get(ctx, rec.Name, "A")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.2", got.Value)
}

func TestVerifyRoutesByTypeAndTarget(t *testing.T) {
	ctx := context.Background()
	main, other := sim.NewCloud(sim.Options{}), sim.NewCloud(sim.Options{})
	for _, c := range []*sim.Cloud{main, other} {
		require.NoError(t, c.LoadInventory(ferry.Inventory{Sites: []ferry.Site{{Name: "site-a"}}}))
	}
	// A check reaching the wrong cloud fails loudly.
	main.InjectFault(sim.Fault{Op: "verify.check", Target: "db", Kind: drivers.Permanent})
	other.InjectFault(sim.Fault{Op: "verify.check", Target: "web", Kind: drivers.Permanent})
	v := router.NewVerify(main)
	v.Route(ferry.CheckSQL, func(target string) bool { return target == "ledger-db" }, other)

	r, err := v.Check(ctx, "site-a", "", drivers.CheckSpec{Name: "db", Type: ferry.CheckSQL, Target: "ledger-db"})
	require.NoError(t, err)
	require.True(t, r.Passed)
	_, err = v.Check(ctx, "site-a", "", drivers.CheckSpec{Name: "web", Type: ferry.CheckSQL, Target: "other-db"})
	require.NoError(t, err, "an sql check of another target goes to the fallback")

	none := router.NewVerify(nil)
	_, err = none.Check(ctx, "site-a", "", drivers.CheckSpec{Name: "web", Type: ferry.CheckHTTP, Target: "http://x/"})
	require.True(t, drivers.IsPermanent(err), "%v", err)
}
