package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/stretchr/testify/require"
)

// requireErr checks err is a *ferry.Error with code and, when field is not
// empty, that field.
func requireErr(t *testing.T, err error, code, field string) *ferry.Error {
	t.Helper()
	require.Error(t, err)
	var fe *ferry.Error
	require.True(t, errors.As(err, &fe), "not a *ferry.Error: %v", err)
	require.Equal(t, code, fe.Code, "error: %v", err)
	if field != "" {
		require.Equal(t, field, fe.Field, "error: %v", err)
	}
	return fe
}

func ptr[T any](v T) *T { return &v }

// seed puts two sites, a replicated backend pair and a group.
func seed(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.ApplyInventory(ctx, ferry.Inventory{
		Sites: []ferry.Site{{Name: "east"}, {Name: "west"}},
		Backends: []ferry.Backend{
			{Name: "east-ceph", Site: "east", Type: "rbd", Members: []string{"e1", "e2"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "west", Backend: "west-ceph"}}},
			{Name: "west-ceph", Site: "west", Type: "rbd",
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "east", Backend: "east-ceph"}}},
		},
		Groups: []ferry.Group{testGroup("shop")},
	}))
}

func testGroup(name string) ferry.Group {
	return ferry.Group{
		Name: name, Project: "retail", PrimarySite: "east", DRSite: "west",
		RPOSeconds: 60, Consistency: ferry.ConsistencyApplication, QuiescePolicy: ferry.QuiesceAbort,
		Priority: 5,
		Volumes:  []ferry.Volume{{Name: "db-data", Backend: "east-ceph", SizeGB: 100}},
		Tiers: []ferry.Tier{
			{Name: "db", Servers: []ferry.Server{{Name: "db1", Volumes: []string{"db-data"}, Networks: []string{"prod"}}}},
			{Name: "web", Servers: []ferry.Server{{Name: "web1", Networks: []string{"prod"}}}},
		},
		NetworkMappings: []ferry.NetworkMapping{{Production: "prod", DR: "prod-dr", Test: "bubble"}},
		DNSRecords:      []ferry.DNSRecord{{Name: "shop.example.", Type: "A", TTL: 60, Primary: "10.0.0.1", DR: "10.1.0.1"}},
		Checks:          []ferry.Check{{Name: "home", Type: ferry.CheckHTTP, Target: "http://shop.example/", Expect: "200"}},
		Approval:        ferry.ApprovalPolicy{Required: true},
		DrillSchedule:   "0 3 * * 0",
	}
}

func TestOpenTwiceAppliesMigrationsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.URL(t)

	// Processes starting together: concurrent Opens on a fresh database.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(ctx, u)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	for range 2 {
		s, err := store.Open(ctx, u)
		require.NoError(t, err)
		require.NoError(t, s.Ping(ctx))
		var n int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&n))
		files, err := filepath.Glob("migrations/*.sql")
		require.NoError(t, err)
		require.Equal(t, len(files), n, "each migration recorded once")
		s.Close()
	}
}

func TestOpenCreatesMissingDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := storetest.UnusedURL(t)

	var wg sync.WaitGroup
	stores := make([]*store.Store, 3)
	errs := make([]error, 3)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = store.Open(ctx, u)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err)
		t.Cleanup(stores[i].Close)
	}
	s := stores[0]
	var db string
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT current_database()`).Scan(&db))
	require.Contains(t, u, "/"+db)
	_, err := s.PutSite(ctx, ferry.Site{Name: "east"})
	require.NoError(t, err)
}

func TestOpenBadServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://postgres@127.0.0.1:1/ferry?connect_timeout=2")
	require.Error(t, err)
	_, err = store.Open(ctx, "::not a url")
	require.Error(t, err)
}

func TestSites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)

	created, err := s.PutSite(ctx, ferry.Site{Name: "east", Description: "us-east-1", Labels: map[string]string{"region": "us"}})
	require.NoError(t, err)
	require.True(t, created)
	got, err := s.GetSite(ctx, "east")
	require.NoError(t, err)
	require.Equal(t, ferry.Site{Name: "east", Description: "us-east-1", Labels: map[string]string{"region": "us"}}, got)

	created, err = s.PutSite(ctx, ferry.Site{Name: "east", Description: "replaced"})
	require.NoError(t, err)
	require.False(t, created)
	got, err = s.GetSite(ctx, "east")
	require.NoError(t, err)
	require.Equal(t, ferry.Site{Name: "east", Description: "replaced"}, got)

	_, err = s.PutSite(ctx, ferry.Site{})
	requireErr(t, err, ferry.EInvalid, "name")

	_, err = s.GetSite(ctx, "nowhere")
	fe := requireErr(t, err, ferry.ENotFound, "")
	require.Contains(t, fe.Message, `"nowhere"`)

	list, next, err := s.ListSites(ctx, ferry.Page{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Equal(t, []ferry.Site{{Name: "east", Description: "replaced"}}, list)

	require.NoError(t, s.DeleteSite(ctx, "east"))
	_, err = s.GetSite(ctx, "east")
	requireErr(t, err, ferry.ENotFound, "")
	requireErr(t, s.DeleteSite(ctx, "east"), ferry.ENotFound, "")
}

func TestBackends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	for _, n := range []string{"east", "west"} {
		_, err := s.PutSite(ctx, ferry.Site{Name: n})
		require.NoError(t, err)
	}

	west := ferry.Backend{Name: "west-cinder", Site: "west", Type: "cinder"}
	created, err := s.PutBackend(ctx, west)
	require.NoError(t, err)
	require.True(t, created)

	east := ferry.Backend{
		Name: "east-cinder", Site: "east", Type: "cinder", Members: []string{"c1", "c2"},
		ReplicationTargets: []ferry.ReplicationTarget{{ID: "dr", Backend: "west-cinder"}},
		ReplicationStatus:  ferry.ReplicationEnabled,
	}
	created, err = s.PutBackend(ctx, east)
	require.NoError(t, err)
	require.True(t, created)
	got, err := s.GetBackend(ctx, "east-cinder")
	require.NoError(t, err)
	require.Equal(t, east, got)

	// Observed state written by a run survives a PUT of the declared shape.
	require.NoError(t, s.SetBackendState(ctx, "east-cinder", ferry.ReplicationFailedOver, "dr", true))
	members, err := s.BackendMembers(ctx, "east-cinder")
	require.NoError(t, err)
	require.Equal(t, []store.Member{{Name: "c1", ActiveBackendID: "dr"}, {Name: "c2", ActiveBackendID: "dr"}}, members)
	require.NoError(t, s.SetMemberActiveBackendID(ctx, "east-cinder", "c2", ""))

	replaced := ferry.Backend{
		Name: "east-cinder", Site: "east", Type: "cinder", Members: []string{"c2", "c3"},
		ReplicationTargets: []ferry.ReplicationTarget{{ID: "dr2", Backend: "west-cinder"}},
		ReplicationStatus:  ferry.ReplicationEnabled, ActiveBackendID: "", Frozen: false,
	}
	created, err = s.PutBackend(ctx, replaced)
	require.NoError(t, err)
	require.False(t, created)
	got, err = s.GetBackend(ctx, "east-cinder")
	require.NoError(t, err)
	want := replaced
	want.ReplicationStatus, want.ActiveBackendID, want.Frozen = ferry.ReplicationFailedOver, "dr", true
	require.Equal(t, want, got)
	members, err = s.BackendMembers(ctx, "east-cinder")
	require.NoError(t, err)
	// c1 removed; c2 keeps what it reported; c3 is new and starts with the
	// backend's active_backend_id.
	require.Equal(t, []store.Member{{Name: "c2", ActiveBackendID: ""}, {Name: "c3", ActiveBackendID: "dr"}}, members)

	// Fail back: every member follows.
	require.NoError(t, s.SetBackendState(ctx, "east-cinder", ferry.ReplicationEnabled, "", false))
	members, err = s.BackendMembers(ctx, "east-cinder")
	require.NoError(t, err)
	require.Equal(t, []store.Member{{Name: "c2"}, {Name: "c3"}}, members)

	requireErr(t, s.SetBackendState(ctx, "nope", "", "", false), ferry.ENotFound, "")
	requireErr(t, s.SetMemberActiveBackendID(ctx, "east-cinder", "c9", "x"), ferry.ENotFound, "")
	_, err = s.BackendMembers(ctx, "nope")
	requireErr(t, err, ferry.ENotFound, "")
	_, err = s.GetBackend(ctx, "nope")
	requireErr(t, err, ferry.ENotFound, "")

	list, next, err := s.ListBackends(ctx, ferry.Page{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, list, 2)
	require.Equal(t, "east-cinder", list[0].Name)
	require.Equal(t, []string{"c2", "c3"}, list[0].Members)
	require.Equal(t, west, list[1])

	// A backend may replicate to itself-named targets only if it exists; a
	// self reference is allowed and deletable.
	_, err = s.PutBackend(ctx, ferry.Backend{Name: "loop", Site: "east", ReplicationTargets: []ferry.ReplicationTarget{{ID: "self", Backend: "loop"}}})
	require.NoError(t, err)
	require.NoError(t, s.DeleteBackend(ctx, "loop"))

	require.NoError(t, s.DeleteBackend(ctx, "east-cinder"))
	_, err = s.GetBackend(ctx, "east-cinder")
	requireErr(t, err, ferry.ENotFound, "")
	requireErr(t, s.DeleteBackend(ctx, "east-cinder"), ferry.ENotFound, "")
}

func TestGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	seed(t, s)

	g, err := s.GetGroup(ctx, "shop")
	require.NoError(t, err)
	require.Equal(t, testGroup("shop"), g)

	created, err := s.PutGroup(ctx, testGroup("blog"))
	require.NoError(t, err)
	require.True(t, created)

	// Observed active_site survives a replace.
	require.NoError(t, s.SetGroupActiveSite(ctx, "shop", "west"))
	upd := testGroup("shop")
	upd.Priority = 9
	upd.Volumes = append(upd.Volumes, ferry.Volume{Name: "logs", Backend: "east-ceph"})
	upd.ActiveSite = "east" // ignored: PUT never writes observed state
	created, err = s.PutGroup(ctx, upd)
	require.NoError(t, err)
	require.False(t, created)
	g, err = s.GetGroup(ctx, "shop")
	require.NoError(t, err)
	upd.ActiveSite = "west"
	require.Equal(t, upd, g)

	requireErr(t, s.SetGroupActiveSite(ctx, "shop", "mars"), ferry.EInvalid, "active_site")
	requireErr(t, s.SetGroupActiveSite(ctx, "nope", "west"), ferry.ENotFound, "")
	require.NoError(t, s.SetGroupActiveSite(ctx, "shop", ""))
	g, err = s.GetGroup(ctx, "shop")
	require.NoError(t, err)
	require.Empty(t, g.ActiveSite)

	list, next, err := s.ListGroups(ctx, ferry.Page{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, next)
	require.Equal(t, []string{"blog"}, groupNames(list))
	list, next, err = s.ListGroups(ctx, ferry.Page{Limit: 1, Token: next})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Equal(t, []string{"shop"}, groupNames(list))

	require.NoError(t, s.DeleteGroup(ctx, "blog"))
	_, err = s.GetGroup(ctx, "blog")
	fe := requireErr(t, err, ferry.ENotFound, "")
	require.Contains(t, fe.Message, `"blog"`)
	requireErr(t, s.DeleteGroup(ctx, "blog"), ferry.ENotFound, "")
}

func groupNames(gs []ferry.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func TestReferentialErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	seed(t, s)

	_, err := s.PutBackend(ctx, ferry.Backend{Name: "b", Site: "mars"})
	fe := requireErr(t, err, ferry.EInvalid, "site")
	require.Contains(t, fe.Message, `"mars"`)
	_, err = s.PutBackend(ctx, ferry.Backend{Name: "b", Site: "east",
		ReplicationTargets: []ferry.ReplicationTarget{{ID: "x", Backend: "nope"}}})
	requireErr(t, err, ferry.EInvalid, "replication_targets[0].backend")
	_, err = s.PutBackend(ctx, ferry.Backend{Name: "b", Site: "east",
		ReplicationTargets: []ferry.ReplicationTarget{{ID: "x", Backend: "west-ceph"}, {ID: "x", Backend: "west-ceph"}}})
	requireErr(t, err, ferry.EInvalid, "replication_targets[1].id")
	_, err = s.PutBackend(ctx, ferry.Backend{Name: "b", Site: "east", Members: []string{"m", "m"}})
	requireErr(t, err, ferry.EInvalid, "members[1]")
	// Nothing of the failed puts was written.
	_, err = s.GetBackend(ctx, "b")
	requireErr(t, err, ferry.ENotFound, "")

	g := testGroup("g")
	g.PrimarySite = "mars"
	_, err = s.PutGroup(ctx, g)
	requireErr(t, err, ferry.EInvalid, "primary_site")
	g = testGroup("g")
	g.DRSite = "mars"
	_, err = s.PutGroup(ctx, g)
	requireErr(t, err, ferry.EInvalid, "dr_site")
	g = testGroup("g")
	g.DRSite = g.PrimarySite
	_, err = s.PutGroup(ctx, g)
	requireErr(t, err, ferry.EInvalid, "dr_site")
	g = testGroup("g")
	g.Volumes = []ferry.Volume{{Name: "a", Backend: "east-ceph"}, {Name: "b", Backend: "east-ceph"}, {Name: "c", Backend: "nope"}}
	_, err = s.PutGroup(ctx, g)
	fe = requireErr(t, err, ferry.EInvalid, "volumes[2].backend")
	require.Contains(t, fe.Message, `"nope"`)
	g = testGroup("g")
	g.Shares = []ferry.Share{{Name: "home", Backend: "nope"}}
	_, err = s.PutGroup(ctx, g)
	requireErr(t, err, ferry.EInvalid, "shares[0].backend")
	_, err = s.GetGroup(ctx, "g")
	requireErr(t, err, ferry.ENotFound, "")
}

func TestDeleteConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	seed(t, s)

	fe := requireErr(t, s.DeleteSite(ctx, "east"), ferry.EConflict, "")
	require.Contains(t, fe.Message, `backend "east-ceph"`)
	require.Contains(t, fe.Message, `group "shop"`)

	fe = requireErr(t, s.DeleteBackend(ctx, "east-ceph"), ferry.EConflict, "")
	require.Contains(t, fe.Message, `backend "west-ceph"`) // its replication target
	require.Contains(t, fe.Message, `group "shop"`)

	// A site only a group uses.
	_, err := s.PutSite(ctx, ferry.Site{Name: "north"})
	require.NoError(t, err)
	g := testGroup("north-app")
	g.DRSite = "north"
	_, err = s.PutGroup(ctx, g)
	require.NoError(t, err)
	fe = requireErr(t, s.DeleteSite(ctx, "north"), ferry.EConflict, "")
	require.Contains(t, fe.Message, `group "north-app"`)

	// Unwind in order and everything deletes.
	require.NoError(t, s.DeleteGroup(ctx, "north-app"))
	require.NoError(t, s.DeleteSite(ctx, "north"))
	require.NoError(t, s.DeleteGroup(ctx, "shop"))
	fe = requireErr(t, s.DeleteBackend(ctx, "east-ceph"), ferry.EConflict, "")
	require.NotContains(t, fe.Message, "group")
	_, err = s.PutBackend(ctx, ferry.Backend{Name: "west-ceph", Site: "west", Type: "rbd"})
	require.NoError(t, err)
	require.NoError(t, s.DeleteBackend(ctx, "east-ceph"))
	require.NoError(t, s.DeleteBackend(ctx, "west-ceph"))
	require.NoError(t, s.DeleteSite(ctx, "east"))
	require.NoError(t, s.DeleteSite(ctx, "west"))
}

func TestDeleteGroupWithActiveRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	seed(t, s)
	require.NoError(t, s.PutReplicas(ctx, "shop", []ferry.Replica{{Resource: "db-data", Kind: "volume", Site: "west"}}))

	run := ferry.Run{ID: "run-1", WorkflowID: "failover/shop", Kind: ferry.KindFailover, Group: "shop",
		State: ferry.RunRunning, Created: time.Now()}
	require.NoError(t, s.CreateRun(ctx, run))
	fe := requireErr(t, s.DeleteGroup(ctx, "shop"), ferry.EConflict, "")
	require.Contains(t, fe.Message, `"run-1"`)

	active, err := s.ActiveRuns(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, active, 1)

	run.State = ferry.RunCompleted
	run.Ended = ptr(time.Now())
	require.NoError(t, s.FinishRun(ctx, run))
	active, err = s.ActiveRuns(ctx, "shop")
	require.NoError(t, err)
	require.Empty(t, active)
	require.NoError(t, s.DeleteGroup(ctx, "shop"))

	// The run's record outlives its group.
	got, err := s.GetRun(ctx, "run-1")
	require.NoError(t, err)
	require.Equal(t, ferry.RunCompleted, got.State)
}

func TestApplyInventoryAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)

	bad := ferry.Inventory{
		Sites: []ferry.Site{{Name: "east"}, {Name: "west"}},
		Backends: []ferry.Backend{
			{Name: "east-ceph", Site: "east"},
			{Name: "lost", Site: "mars"},
			{Name: "west-ceph", Site: "west"},
		},
		Groups: []ferry.Group{testGroup("shop")},
	}
	err := s.ApplyInventory(ctx, bad)
	fe := requireErr(t, err, ferry.EInvalid, "backends[1].site")
	require.Contains(t, fe.Message, `"mars"`)
	require.Contains(t, err.Error(), `"lost"`)
	sites, _, err := s.ListSites(ctx, ferry.Page{})
	require.NoError(t, err)
	require.Empty(t, sites)
	backends, _, err := s.ListBackends(ctx, ferry.Page{})
	require.NoError(t, err)
	require.Empty(t, backends)

	bad.Backends[1].Site = "east"
	bad.Groups[0].Volumes[0].Backend = "nope"
	err = s.ApplyInventory(ctx, bad)
	requireErr(t, err, ferry.EInvalid, "groups[0].volumes[0].backend")
	sites, _, err = s.ListSites(ctx, ferry.Page{})
	require.NoError(t, err)
	require.Empty(t, sites)

	// A replication target may name a backend later in the list.
	good := ferry.Inventory{
		Sites: []ferry.Site{{Name: "east"}, {Name: "west"}},
		Backends: []ferry.Backend{
			{Name: "east-ceph", Site: "east", ReplicationTargets: []ferry.ReplicationTarget{{ID: "w", Backend: "west-ceph"}}},
			{Name: "west-ceph", Site: "west"},
		},
		Groups: []ferry.Group{testGroup("shop")},
	}
	require.NoError(t, s.ApplyInventory(ctx, good))
	b, err := s.GetBackend(ctx, "east-ceph")
	require.NoError(t, err)
	require.Equal(t, good.Backends[0], b)
	g, err := s.GetGroup(ctx, "shop")
	require.NoError(t, err)
	require.Equal(t, testGroup("shop"), g)

	// Applying again replaces, and keeps observed state.
	require.NoError(t, s.SetBackendState(ctx, "east-ceph", ferry.ReplicationFailedOver, "w", false))
	require.NoError(t, s.ApplyInventory(ctx, good))
	b, err = s.GetBackend(ctx, "east-ceph")
	require.NoError(t, err)
	require.Equal(t, "w", b.ActiveBackendID)
	require.Equal(t, ferry.ReplicationFailedOver, b.ReplicationStatus)

	err = s.ApplyInventory(ctx, ferry.Inventory{Backends: []ferry.Backend{
		{Name: "x", Site: "east", ReplicationTargets: []ferry.ReplicationTarget{{ID: "t", Backend: "ghost"}}},
	}})
	requireErr(t, err, ferry.EInvalid, "backends[0].replication_targets[0].backend")
	_, err = s.GetBackend(ctx, "x")
	requireErr(t, err, ferry.ENotFound, "")
}

func TestPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	inv := ferry.Inventory{}
	const n = 257
	for i := range n {
		inv.Sites = append(inv.Sites, ferry.Site{Name: fmt.Sprintf("site-%03d", i)})
		inv.Backends = append(inv.Backends, ferry.Backend{Name: fmt.Sprintf("b-%03d", i), Site: "site-000"})
	}
	require.NoError(t, s.ApplyInventory(ctx, inv))

	seen := map[string]int{}
	var order []string
	tok, pages := "", 0
	for {
		items, next, err := s.ListSites(ctx, ferry.Page{Limit: 100, Token: tok})
		require.NoError(t, err)
		pages++
		for _, it := range items {
			seen[it.Name]++
			order = append(order, it.Name)
		}
		if next == "" {
			break
		}
		tok = next
	}
	require.Equal(t, 3, pages)
	require.Len(t, seen, n)
	for name, c := range seen {
		require.Equal(t, 1, c, name)
	}
	require.IsIncreasing(t, order)

	// Default limit is 100; exactly a page's worth ends with no token.
	items, next, err := s.ListBackends(ctx, ferry.Page{})
	require.NoError(t, err)
	require.Len(t, items, 100)
	require.NotEmpty(t, next)
	items, next, err = s.ListBackends(ctx, ferry.Page{Limit: 5000})
	require.NoError(t, err)
	require.Len(t, items, n)
	require.Empty(t, next)
	_, next, err = s.ListBackends(ctx, ferry.Page{Limit: n})
	require.NoError(t, err)
	require.Empty(t, next)

	for _, tok := range []string{"!!!", "bm90LWEtdG9rZW4", "bjE6"} {
		_, _, err = s.ListSites(ctx, ferry.Page{Token: tok})
		requireErr(t, err, ferry.EInvalid, "page_token")
		_, _, err = s.ListBackends(ctx, ferry.Page{Token: tok})
		requireErr(t, err, ferry.EInvalid, "page_token")
		_, _, err = s.ListGroups(ctx, ferry.Page{Token: tok})
		requireErr(t, err, ferry.EInvalid, "page_token")
		_, _, err = s.ListRuns(ctx, ferry.RunFilter{Page: ferry.Page{Token: tok}})
		requireErr(t, err, ferry.EInvalid, "page_token")
	}
}

func TestRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	est := time.FixedZone("EST", -5*3600)

	full := ferry.Run{
		ID: "r-full", WorkflowID: "failover/shop", Kind: ferry.KindFailover, Group: "shop", Site: "west",
		Mode: ferry.ModePlanned, State: ferry.RunPending, RequestedBy: "alice",
		Created: base.In(est),
	}
	require.NoError(t, s.CreateRun(ctx, full))
	got, err := s.GetRun(ctx, "r-full")
	require.NoError(t, err)
	want := full
	want.Created = base
	require.Equal(t, want, got)
	require.Equal(t, time.UTC, got.Created.Location())

	// CreateRun again does nothing.
	dup := full
	dup.State = ferry.RunFailed
	require.NoError(t, s.CreateRun(ctx, dup))
	got, err = s.GetRun(ctx, "r-full")
	require.NoError(t, err)
	require.Equal(t, ferry.RunPending, got.State)

	started := base.Add(time.Second)
	ended := base.Add(90 * time.Second)
	full.State = ferry.RunCompleted
	full.Ended = ptr(ended.In(est))
	full.RPOSeconds = ptr(1.5)
	full.RTOSeconds = ptr(90.0)
	full.WritesLost = ptr(int64(-1))
	full.Steps = []ferry.Step{
		{Name: "precheck", State: ferry.StepCompleted, Started: ptr(started.In(est)), Ended: ptr(started), Attempts: 1},
		{Name: "verify", State: ferry.StepSkipped, Attempts: 0, Note: "skipped by bob"},
	}
	full.Approvals = []ferry.Approval{{By: "carol", At: started.In(est), Comment: "go"}}
	full.Events = []ferry.Event{{Action: "skip", By: "bob", At: ended, Step: "verify"}}
	full.Flags = []string{"crash_consistent"}
	full.Message = "done"
	require.NoError(t, s.FinishRun(ctx, full))
	got, err = s.GetRun(ctx, "r-full")
	require.NoError(t, err)
	want = full
	want.Created, want.Ended = base, ptr(ended)
	want.Steps = []ferry.Step{
		{Name: "precheck", State: ferry.StepCompleted, Started: ptr(started), Ended: ptr(started), Attempts: 1},
		{Name: "verify", State: ferry.StepSkipped, Note: "skipped by bob"},
	}
	want.Approvals = []ferry.Approval{{By: "carol", At: started, Comment: "go"}}
	require.Equal(t, want, got)

	// FinishRun inserts a run it never saw created.
	require.NoError(t, s.FinishRun(ctx, ferry.Run{ID: "r-orphan", Kind: "drill", Group: "blog", State: ferry.RunFailed, Created: base.Add(time.Minute)}))
	_, err = s.GetRun(ctx, "r-orphan")
	require.NoError(t, err)

	_, err = s.GetRun(ctx, "nope")
	fe := requireErr(t, err, ferry.ENotFound, "")
	require.Contains(t, fe.Message, `"nope"`)
	requireErr(t, s.CreateRun(ctx, ferry.Run{}), ferry.EInvalid, "id")

	// More runs for the filters; created ties broken by id.
	more := []ferry.Run{
		{ID: "r-a", Kind: "drill", Group: "shop", Site: "west", State: ferry.RunRunning, Created: base.Add(2 * time.Minute)},
		{ID: "r-b", Kind: "drill", Group: "shop", Site: "west", State: ferry.RunPaused, Created: base.Add(2 * time.Minute)},
		{ID: "r-c", Kind: "evacuate", Site: "east", State: ferry.RunRunning, Created: base.Add(3 * time.Minute)},
		{ID: "r-d", Kind: ferry.KindFailover, Group: "blog", Site: "east", State: ferry.RunWaitingApproval, Created: base.Add(4 * time.Minute)},
	}
	for _, r := range more {
		require.NoError(t, s.CreateRun(ctx, r))
	}
	ids := func(f ferry.RunFilter) []string {
		t.Helper()
		runs, next, err := s.ListRuns(ctx, f)
		require.NoError(t, err)
		require.Empty(t, next)
		var out []string
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}
	require.Equal(t, []string{"r-d", "r-c", "r-b", "r-a", "r-orphan", "r-full"}, ids(ferry.RunFilter{}))
	require.Equal(t, []string{"r-b", "r-a", "r-full"}, ids(ferry.RunFilter{Group: "shop"}))
	require.Equal(t, []string{"r-d", "r-c"}, ids(ferry.RunFilter{Site: "east"}))
	require.Equal(t, []string{"r-b", "r-a", "r-orphan"}, ids(ferry.RunFilter{Kind: "drill"}))
	require.Equal(t, []string{"r-c", "r-a"}, ids(ferry.RunFilter{State: ferry.RunRunning}))
	require.Equal(t, []string{"r-a"}, ids(ferry.RunFilter{Group: "shop", Kind: "drill", State: ferry.RunRunning, Site: "west"}))
	require.Empty(t, ids(ferry.RunFilter{Group: "nope"}))

	// Paging through runs, one at a time, sees each once in order.
	var paged []string
	tok := ""
	for {
		runs, next, err := s.ListRuns(ctx, ferry.RunFilter{Page: ferry.Page{Limit: 1, Token: tok}})
		require.NoError(t, err)
		for _, r := range runs {
			paged = append(paged, r.ID)
		}
		if next == "" {
			break
		}
		tok = next
	}
	require.Equal(t, ids(ferry.RunFilter{}), paged)
	runs, next, err := s.ListRuns(ctx, ferry.RunFilter{Group: "shop", Page: ferry.Page{Limit: 2}})
	require.NoError(t, err)
	require.Len(t, runs, 2)
	runs, next, err = s.ListRuns(ctx, ferry.RunFilter{Group: "shop", Page: ferry.Page{Limit: 2, Token: next}})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Equal(t, "r-full", runs[0].ID)

	active, err := s.ActiveRuns(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, active, 2)
	require.Equal(t, "r-b", active[0].ID)
	require.Equal(t, "r-a", active[1].ID)
	active, err = s.ActiveRuns(ctx, "blog")
	require.NoError(t, err)
	require.Len(t, active, 1)
	require.Equal(t, "r-d", active[0].ID)
}

func TestFinalRunStatesMatchDomain(t *testing.T) {
	t.Parallel()
	all := []string{ferry.RunPending, ferry.RunRunning, ferry.RunWaitingApproval, ferry.RunPaused,
		ferry.RunCompleted, ferry.RunRolledBack, ferry.RunFailed, ferry.RunAborted}
	var final []string
	for _, st := range all {
		if ferry.RunEnded(st) {
			final = append(final, st)
		}
	}
	require.ElementsMatch(t, final, store.FinalRunStates)
}

func TestReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	seed(t, s)
	obs := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	rs := []ferry.Replica{
		{Resource: "db-data", Kind: "volume", Site: "west", Backend: "west-ceph", State: ferry.ReplicaInSync, Seq: 41, LagSecs: 2.5, Observed: obs},
		{Group: "shop", Resource: "db-data", Kind: "volume", Site: "east", Backend: "east-ceph", State: ferry.ReplicaActive, Seq: 42, Observed: obs.In(time.FixedZone("X", 3600))},
	}
	require.NoError(t, s.PutReplicas(ctx, "shop", rs))
	got, err := s.ListReplicas(ctx, "shop")
	require.NoError(t, err)
	require.Equal(t, []ferry.Replica{
		{Group: "shop", Resource: "db-data", Kind: "volume", Site: "east", Backend: "east-ceph", State: ferry.ReplicaActive, Seq: 42, Observed: obs},
		{Group: "shop", Resource: "db-data", Kind: "volume", Site: "west", Backend: "west-ceph", State: ferry.ReplicaInSync, Seq: 41, LagSecs: 2.5, Observed: obs},
	}, got)

	// A later observation replaces the record of that replica only.
	require.NoError(t, s.PutReplicas(ctx, "shop", []ferry.Replica{
		{Resource: "db-data", Kind: "volume", Site: "west", Backend: "west-ceph", State: ferry.ReplicaOutOfSync, Seq: 40, LagSecs: 300},
	}))
	got, err = s.ListReplicas(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, ferry.ReplicaOutOfSync, got[1].State)
	require.WithinDuration(t, time.Now(), got[1].Observed, time.Minute)
	require.Equal(t, ferry.ReplicaActive, got[0].State)

	requireErr(t, s.PutReplicas(ctx, "nope", nil), ferry.ENotFound, "")
	_, err = s.ListReplicas(ctx, "nope")
	requireErr(t, err, ferry.ENotFound, "")
	requireErr(t, s.PutReplicas(ctx, "shop", []ferry.Replica{{Group: "other", Resource: "x", Site: "west"}}), ferry.EInvalid, "replicas[0].group")
	requireErr(t, s.PutReplicas(ctx, "shop", []ferry.Replica{{Resource: "x"}}), ferry.EInvalid, "replicas[0].site")

	empty, err := s.ListReplicas(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, empty, 2)
	require.NoError(t, s.DeleteGroup(ctx, "shop"))
}

func TestReplaceReplicasDropsWhatIsGone(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	require.NoError(t, st.ApplyInventory(ctx, demo.Inventory()))
	both := []ferry.Replica{
		{Resource: "shop-db-data", Kind: "volume", Site: "site-a", Backend: "a-block", State: ferry.ReplicaActive},
		{Resource: "shop-db-data", Kind: "volume", Site: "site-b", Backend: "b-block", State: ferry.ReplicaInSync},
	}
	require.NoError(t, st.PutReplicas(ctx, "shop", both))
	// An unprotect removed the DR replica: replacing with the active alone
	// drops the other record; a put would have kept it.
	require.NoError(t, st.PutReplicas(ctx, "shop", both[:1]))
	got, err := st.ListReplicas(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.NoError(t, st.ReplaceReplicas(ctx, "shop", both[:1]))
	got, err = st.ListReplicas(ctx, "shop")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "site-a", got[0].Site)
	require.NoError(t, st.ReplaceReplicas(ctx, "shop", nil))
	got, err = st.ListReplicas(ctx, "shop")
	require.NoError(t, err)
	require.Empty(t, got)
}

// TestGroupsVersion: the version moves with every insert, update and
// delete of a group, and stays while nothing is written.
func TestGroupsVersion(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	version := func() string {
		t.Helper()
		v, err := s.GroupsVersion(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, v)
		return v
	}
	seen := map[string]bool{}
	fresh := func(what string) {
		t.Helper()
		v := version()
		require.False(t, seen[v], "the version after %s was seen before", what)
		seen[v] = true
		require.Equal(t, v, version(), "no write, same version")
	}
	fresh("nothing")
	for _, site := range []string{"east", "west"} {
		_, err := s.PutSite(ctx, ferry.Site{Name: site})
		require.NoError(t, err)
	}
	require.Equal(t, version(), version())
	g := ferry.Group{Name: "shop", PrimarySite: "east", DRSite: "west", RPOSeconds: 60}
	g.Defaults()
	_, err := s.PutGroup(ctx, g)
	require.NoError(t, err)
	fresh("an insert")
	g.RPOSeconds = 120
	_, err = s.PutGroup(ctx, g)
	require.NoError(t, err)
	fresh("an update")
	require.NoError(t, s.SetGroupActiveSite(ctx, "shop", "west"))
	fresh("an active site")
	g.Name = "crm"
	_, err = s.PutGroup(ctx, g)
	require.NoError(t, err)
	fresh("a second insert")
	require.NoError(t, s.DeleteGroup(ctx, "shop"))
	fresh("a delete")
}
