package openstack

// The compute, network and DNS ports against the SIMULATOR's OpenStack-API
// facade (drivers/sim: Nova, Neutron and Designate answered from the
// simulator's model, every answer marked X-Ferry-Facade: simulator). Nova,
// Neutron and Designate do not run on this machine; these tests prove the
// adapter's requests are gophercloud's real ones and its semantics hold
// against OpenStack's API shapes, not that a real cloud behaves so.
//
// Boot's volume ids: the simulator's facade has no Cinder here, so the
// test points the adapter's volume lookup (Config.bootVolumes) at the ids
// the facades share, sim.FacadeID("volume", name), which the Nova facade
// resolves to the simulator's volumes and clones. Everything else goes
// through the adapter's own code.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
)

const (
	facadeA, facadeB = "site-a", "site-b" // the demo's sites
)

// facadeEnv is the simulator serving the demo inventory over HTTP, and an
// adapter whose clouds.yaml points every site's compute, network and dns
// endpoints at the simulator's facade for that site.
type facadeEnv struct {
	t      *testing.T
	cloud  *sim.Cloud
	client *sim.Client
	url    string
	a      *Adapter
	cfg    Config
}

func newFacadeEnv(t *testing.T) *facadeEnv {
	t.Helper()
	cloud := sim.NewCloud(sim.Options{BootTime: 300 * time.Millisecond})
	srv := httptest.NewServer(sim.NewHandler(cloud))
	t.Cleanup(srv.Close)
	client := sim.NewClient(srv.URL, srv.Client())
	require.NoError(t, client.LoadInventory(context.Background(), demo.Inventory()))
	t.Logf("OpenStack endpoints are the simulator's facade at %s/openstack/<site>/ (not a real cloud)", srv.URL)

	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	var doc string
	for _, s := range []struct{ cloud, site, computeCap string }{{"sim-a", facadeA, "2.40"}, {"sim-b", facadeB, ""}} {
		base := srv.URL + "/openstack/" + s.site
		doc += fmt.Sprintf("  %s:\n    auth_type: none\n    auth: {username: ferry, project_id: dr}\n", s.cloud)
		doc += fmt.Sprintf("    compute_endpoint_override: %s/compute/v2.1/\n    network_endpoint_override: %s/network/v2.0/\n    dns_endpoint_override: %s/dns/v2/\n", base, base, base)
		if s.computeCap != "" {
			// Site A's Nova is capped below 2.47: the production
			// server's flavor is then read by id.
			doc += fmt.Sprintf("    compute_api_version: %q\n", s.computeCap)
		}
	}
	require.NoError(t, os.WriteFile(clouds, []byte("clouds:\n"+doc), 0o600))
	cfg := Config{
		CloudsFile: clouds,
		Sites:      map[string]Site{facadeA: {Cloud: "sim-a"}, facadeB: {Cloud: "sim-b", Flavor: "m1.large"}},
		StateDir:   filepath.Join(dir, "state"), DNSSite: facadeB,
		Timeout: 5 * time.Second, SettleTimeout: 10 * time.Second,
		bootVolumes: func(_ context.Context, _ string, names []string) ([]string, error) {
			ids := make([]string, len(names))
			for i, n := range names {
				ids[i] = sim.FacadeID("volume", n)
			}
			return ids, nil
		},
	}
	a, err := New(cfg)
	require.NoError(t, err)
	return &facadeEnv{t: t, cloud: cloud, client: client, url: srv.URL, a: a, cfg: cfg}
}

func requireKind(t *testing.T, kind string, err error, msg ...any) {
	t.Helper()
	require.Error(t, err, msg...)
	require.Equal(t, kind, drivers.Kind(err), "%v", err)
}

// waitRunning polls Health until every server runs (booted servers stay
// BUILD for the simulator's boot time).
func (e *facadeEnv) waitRunning(site string, names []string) []drivers.ServerHealth {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs, err := e.a.Health(context.Background(), site, names)
		require.NoError(e.t, err)
		all := true
		for _, h := range hs {
			all = all && h.State == drivers.ServerRunning && h.Healthy
		}
		if all {
			return hs
		}
		require.True(e.t, time.Now().Before(deadline), "servers not running at %s: %+v", site, hs)
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *facadeEnv) state(site string, names ...string) []string {
	e.t.Helper()
	hs, err := e.cloud.Health(context.Background(), site, names)
	require.NoError(e.t, err)
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.State
	}
	return out
}

// seedProduction gives the production networks at site A subnets, and the
// crm servers ports with fixed IPs, through Neutron's API (the facade's).
func (e *facadeEnv) seedProduction(ctx context.Context, addrs map[string][2]string) {
	e.t.Helper()
	nc, err := e.a.neutron(ctx, "test.seed", facadeA)
	require.NoError(e.t, err)
	sc, _, err := e.a.nova(ctx, "test.seed", facadeA)
	require.NoError(e.t, err)
	cidrs := map[string]string{"prod-db": "10.1.1.0/24", "prod-app": "10.1.2.0/24", "prod-web": "10.1.3.0/24"}
	nets := map[string]string{}
	for name, cidr := range cidrs {
		n, err := e.a.networkNamed(ctx, "test.seed", nc, facadeA, name)
		require.NoError(e.t, err)
		require.NotNil(e.t, n, "the inventory's network %s", name)
		nets[name] = n.ID
		_, err = subnets.Create(ctx, nc, subnets.CreateOpts{NetworkID: n.ID, Name: name + "-v4", CIDR: cidr, IPVersion: 4}).Extract()
		require.NoError(e.t, err)
	}
	for server, a := range addrs {
		s, err := e.a.serverNamed(ctx, "test.seed", sc, facadeA, server)
		require.NoError(e.t, err)
		_, err = ports.Create(ctx, nc, ports.CreateOpts{NetworkID: nets[a[0]], DeviceID: s.ID, DeviceOwner: "compute:" + facadeA,
			FixedIPs: []ports.IP{{IPAddress: a[1]}}}).Extract()
		require.NoError(e.t, err)
	}
}

// A failover of the demo's crm group and one shop server, through the
// ports, against the simulator's facade: stop at A, map networks at B,
// boot at B from the volumes made active there, keep the addresses,
// repoint DNS; then a drill's bubble that leaves nothing behind.
func TestPortsDRSequenceOnSimulatorFacade(t *testing.T) {
	e := newFacadeEnv(t)
	ctx := context.Background()
	crm := []string{"crm-db-1", "crm-app-1", "crm-web-1"}
	addrs := map[string][2]string{"crm-db-1": {"prod-db", "10.1.1.20"}, "crm-app-1": {"prod-app", "10.1.2.20"}, "crm-web-1": {"prod-web", "10.1.3.20"}}
	e.seedProduction(ctx, addrs)

	// Quiesce: Nova has no such API.
	err := e.a.Quiesce(ctx, "run/quiesce", facadeA, crm)
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "Nova has no API to freeze a guest's file systems")
	require.NoError(t, e.a.Unquiesce(ctx, "run/unquiesce", facadeA, crm), "nothing was frozen: nothing to thaw")

	// Stop at A (os-stop), idempotent.
	require.NoError(t, e.a.Stop(ctx, "run/stop", facadeA, append(crm, "shop-db-1")))
	require.Equal(t, []string{drivers.ServerStopped, drivers.ServerStopped, drivers.ServerStopped}, e.state(facadeA, crm...))
	require.NoError(t, e.a.Stop(ctx, "run/stop-again", facadeA, crm), "stopping stopped servers is done")
	// Nova's 409 to an os-stop of a server that is already SHUTOFF (the
	// adapter's view was stale) is done, not an error.
	scA, _, err := e.a.nova(ctx, "test", facadeA)
	require.NoError(t, err)
	db, err := e.a.serverNamed(ctx, "test", scA, facadeA, "crm-db-1")
	require.NoError(t, err)
	stale := *db
	stale.Status = novaActive
	require.NoError(t, e.a.serverAction(ctx, "compute.stop", scA, facadeA, &stale, "os-stop", novaShutoff, "powering-off"))
	running, err := e.a.serverNamed(ctx, "test", scA, facadeA, "shop-app-1")
	require.NoError(t, err)
	err = e.a.serverAction(ctx, "compute.start", scA, facadeA, running, "os-start", "PAUSED", "unpausing")
	requireKind(t, drivers.Retryable, classify(ctx, "compute.start", err), "a 409 that stands is retryable")
	require.Contains(t, err.Error(), "Nova refused os-start of server shop-app-1 (status ACTIVE")
	hs, err := e.a.Health(ctx, facadeA, crm)
	require.NoError(t, err)
	for _, h := range hs {
		require.Equal(t, drivers.ServerStopped, h.State)
		require.False(t, h.Healthy)
	}

	// The storage fails over through the simulator's own calls.
	vols := []string{"crm-db-data", "crm-app-root", "crm-web-root", "shop-db-data", "shop-db-log"}
	require.NoError(t, e.client.Demote(ctx, "run/demote", "a-block", vols))
	_, err = e.client.Promote(ctx, "run/promote", "b-block", vols, false)
	require.NoError(t, err)

	// Map the networks at B: the production addressing, once.
	mappings := []drivers.NetworkMapping{{From: "prod-db", To: "dr-db"}, {From: "prod-app", To: "dr-app"}, {From: "prod-web", To: "dr-web"}}
	require.NoError(t, e.a.MapNetworks(ctx, "run/network", facadeB, mappings))
	require.NoError(t, e.a.MapNetworks(ctx, "run/network-again", facadeB, mappings), "a second map changes nothing")
	nc, err := e.a.neutron(ctx, "test", facadeB)
	require.NoError(t, err)
	drDB, err := e.a.networkNamed(ctx, "test", nc, facadeB, "dr-db")
	require.NoError(t, err)
	require.NotNil(t, drDB)
	subs, err := e.a.subnetsOf(ctx, nc, facadeB, drDB.ID)
	require.NoError(t, err)
	require.Len(t, subs, 1, "one subnet, not one per map")
	require.Equal(t, "10.1.1.0/24", subs[0].CIDR)
	require.Equal(t, "10.1.1.1", subs[0].GatewayIP)
	found := false
	for _, n := range e.cloud.State().Networks {
		found = found || (n.Site == facadeB && n.Name == "dr-db")
	}
	require.True(t, found, "the simulator's model holds the DR network")

	// Boot at B, tier by tier, from the volumes active there.
	for _, tier := range [][]drivers.BootSpec{
		{{Name: "crm-db-1", Volumes: []string{"crm-db-data"}, Networks: []string{"dr-db"}},
			{Name: "shop-db-1", Volumes: []string{"shop-db-data", "shop-db-log"}, Networks: []string{"dr-db"}}},
		{{Name: "crm-app-1", Volumes: []string{"crm-app-root"}, Networks: []string{"dr-app"}}},
		{{Name: "crm-web-1", Volumes: []string{"crm-web-root"}, Networks: []string{"dr-web"}}},
	} {
		key := "run/boot/" + tier[0].Name
		require.NoError(t, e.a.Boot(ctx, key, facadeB, tier))
		var names []string
		for _, s := range tier {
			names = append(names, s.Name)
		}
		e.waitRunning(facadeB, names)
		require.NoError(t, e.a.Boot(ctx, key+"/again", facadeB, tier), "a server of that name is not booted twice")
	}
	atB := 0
	for _, s := range e.cloud.State().Servers {
		if s.Site == facadeB {
			atB++
		}
	}
	require.Equal(t, 4, atB, "four servers at B: none booted twice")
	sc, _, err := e.a.nova(ctx, "test", facadeB)
	require.NoError(t, err)
	for server, a := range addrs {
		s, err := e.a.serverNamed(ctx, "test", sc, facadeB, server)
		require.NoError(t, err)
		net := map[string]string{"prod-db": "dr-db", "prod-app": "dr-app", "prod-web": "dr-web"}[a[0]]
		got := s.Addresses[net].([]any)[0].(map[string]any)["addr"]
		require.Equal(t, a[1], got, "%s keeps its production address on %s", server, net)
		require.Equal(t, "m1.small", s.Flavor["original_name"], "%s has the production server's flavor (read by id at A's 2.40)", server)
	}
	shop, err := e.a.serverNamed(ctx, "test", sc, facadeB, "shop-db-1")
	require.NoError(t, err)
	require.Len(t, shop.AttachedVolumes, 2, "both volumes, the boot volume first")
	require.Equal(t, sim.FacadeID("volume", "shop-db-data"), shop.AttachedVolumes[0].ID)
	require.Len(t, shop.Addresses["dr-db"], 1, "no production port: an address Neutron picked")

	hs, err = e.a.Health(ctx, facadeB, []string{"crm-db-1", "nobody"})
	require.NoError(t, err)
	require.Equal(t, drivers.ServerRunning, hs[0].State)
	require.Equal(t, drivers.ServerAbsent, hs[1].State)

	// DNS: repoint with a TTL, through Designate's API.
	rec, err := e.a.Get(ctx, "crm.demo.example", "A")
	require.NoError(t, err)
	require.Equal(t, drivers.Record{Name: "crm.demo.example", Type: "A", TTL: 60, Value: "10.1.0.20"}, rec)
	want := drivers.Record{Name: "crm.demo.example", Type: "A", TTL: 30, Value: "10.2.0.20"}
	require.NoError(t, e.a.Replace(ctx, "run/dns", want))
	rec, err = e.a.Get(ctx, "crm.demo.example", "A")
	require.NoError(t, err)
	require.Equal(t, want, rec)
	simRec, err := e.cloud.Get(ctx, "crm.demo.example", "A")
	require.NoError(t, err)
	require.Equal(t, "10.2.0.20", simRec.Value, "the simulator's own record changed")
	require.Equal(t, 30, simRec.TTL)
	require.NoError(t, e.a.Replace(ctx, "run/dns-again", want), "the same record again is done")
	newRec := drivers.Record{Name: "status.demo.example.", Type: "CNAME", TTL: 300, Value: "crm.demo.example."}
	require.NoError(t, e.a.Replace(ctx, "run/dns-new", newRec), "a record that is missing is created")
	rec, err = e.a.Get(ctx, "status.demo.example", "cname")
	require.NoError(t, err)
	require.Equal(t, "crm.demo.example.", rec.Value)

	// A drill bubble at B: a clone booted inside, then nothing left.
	clones, err := e.client.TestFailoverStart(ctx, "drill/clone", "b-block", []string{"crm-web-root"})
	require.NoError(t, err)
	bubble, err := e.a.CreateBubble(ctx, "drill/bubble", facadeB, "crm-drill")
	require.NoError(t, err)
	again, err := e.a.CreateBubble(ctx, "drill/bubble", facadeB, "crm-drill")
	require.NoError(t, err)
	require.Equal(t, bubble, again, "the key answers the first bubble")
	st := e.cloud.State()
	require.Len(t, st.Bubbles, 1, "the simulator's model holds the bubble")
	bn, err := networks.Get(ctx, nc, bubble).Extract()
	require.NoError(t, err)
	require.Contains(t, bn.Tags, bubbleTag)
	bsubs, err := e.a.subnetsOf(ctx, nc, facadeB, bubble)
	require.NoError(t, err)
	require.Len(t, bsubs, 1)
	require.Empty(t, bsubs[0].GatewayIP, "no gateway: nothing routes out of the bubble")
	require.NoError(t, e.a.Boot(ctx, "drill/boot", facadeB, []drivers.BootSpec{{Name: "crm-web-1-drill", Volumes: clones, Networks: []string{bubble}}}))
	e.waitRunning(facadeB, []string{"crm-web-1-drill"})
	require.NoError(t, e.a.DestroyBubble(ctx, "drill/destroy", facadeB, bubble))
	require.Empty(t, e.cloud.State().Bubbles, "the bubble left the model")
	require.Equal(t, []string{drivers.ServerAbsent}, e.state(facadeB, "crm-web-1-drill"), "its server went with it")
	_, err = networks.Get(ctx, nc, bubble).Extract()
	require.Error(t, err, "the network is gone")
	left, err := e.a.portsOf(ctx, nc, facadeB, ports.ListOpts{NetworkID: bubble})
	require.NoError(t, err)
	require.Empty(t, left)
	all, err := subnets.List(nc, subnets.ListOpts{Name: "crm-drill"}).AllPages(ctx)
	require.NoError(t, err)
	allSubs, err := subnets.ExtractSubnets(all)
	require.NoError(t, err)
	require.Empty(t, allSubs, "its subnet is gone")
	require.NoError(t, e.a.DestroyBubble(ctx, "drill/destroy-again", facadeB, bubble), "a bubble that is gone is done")
	require.NoError(t, e.client.TestFailoverStop(ctx, "drill/stop", "b-block", clones))

	// Compensation: the old production servers start again where they are.
	require.NoError(t, e.a.Start(ctx, "undo/start", facadeA, crm))
	e.waitRunning(facadeA, crm)
}

// What the ports refuse, and how their errors are typed: unknown servers
// and networks, a network that is not a bubble, a missing flavor, a
// volume not active at the site, injected faults, and a site that is down.
func TestPortsErrorsOnSimulatorFacade(t *testing.T) {
	e := newFacadeEnv(t)
	ctx := context.Background()

	err := e.a.Stop(ctx, "e/stop", facadeA, []string{"crm-db-1", "no-such-server"})
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "server no-such-server does not exist at site site-a")
	require.Equal(t, []string{drivers.ServerRunning}, e.state(facadeA, "crm-db-1"), "nothing was stopped")

	err = e.a.Boot(ctx, "e/boot", facadeB, []drivers.BootSpec{{Name: "crm-db-1", Volumes: []string{"crm-db-data"}, Networks: []string{"dr-db"}}})
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "network dr-db does not exist at site site-b")
	err = e.a.Boot(ctx, "e/boot2", facadeB, []drivers.BootSpec{{Name: "crm-db-1", Volumes: []string{"crm-db-data"}}})
	requireKind(t, drivers.Permanent, err, "the volume is still a secondary at B")
	require.Contains(t, err.Error(), "not active at site site-b")
	err = e.a.Boot(ctx, "e/boot3", facadeB, []drivers.BootSpec{{Name: "crm-db-1"}})
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "no volumes")

	require.NoError(t, e.a.MapNetworks(ctx, "e/map", facadeB, []drivers.NetworkMapping{{From: "prod-db", To: "dr-db"}}))
	nc, err := e.a.neutron(ctx, "test", facadeB)
	require.NoError(t, err)
	drDB, err := e.a.networkNamed(ctx, "test", nc, facadeB, "dr-db")
	require.NoError(t, err)
	err = e.a.DestroyBubble(ctx, "e/destroy", facadeB, drDB.ID)
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "is not a Ferry bubble")
	_, err = e.a.CreateBubble(ctx, "e/bubble", facadeB, "dr-db")
	requireKind(t, drivers.Permanent, err, "a bubble may not take an existing network's name")
	err = e.a.MapNetworks(ctx, "e/map2", facadeB, []drivers.NetworkMapping{{From: "prod-nothing", To: "dr-nothing"}})
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "production network prod-nothing is not at any site but site-b")

	_, err = e.a.Get(ctx, "www.elsewhere.org", "A")
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "no zone in Designate at site site-b holds www.elsewhere.org.")
	_, err = e.a.Get(ctx, "nothing.demo.example", "A")
	requireKind(t, drivers.Permanent, err)

	// Without the test's volume lookup, Boot asks the site's Cinder, which
	// this clouds.yaml does not configure: that is said, not retried.
	cfg := e.cfg
	cfg.bootVolumes = nil
	noCinder, err := New(cfg)
	require.NoError(t, err)
	err = noCinder.Boot(ctx, "e/boot-cinder", facadeB, []drivers.BootSpec{{Name: "crm-db-1", Volumes: []string{"crm-db-data"}}})
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "needs the volumes' ids from that site's Cinder, and cloud sim-b of clouds.yaml has auth_type none and no block_storage_endpoint_override")

	// The simulator's injected faults come back typed.
	e.cloud.InjectFault(sim.Fault{Op: "compute.health", Times: 1})
	_, err = e.a.Health(ctx, facadeA, []string{"crm-db-1"})
	requireKind(t, drivers.Retryable, err, "a 503 of the facade")

	// Site A goes down: its endpoints do not answer; the ports say
	// Unreachable, for a client built before and for one built after.
	hs, err := e.a.Health(ctx, facadeA, []string{"crm-db-1"})
	require.NoError(t, err)
	require.Equal(t, drivers.ServerRunning, hs[0].State)
	require.NoError(t, e.client.SetSiteDown(ctx, facadeA, true))
	_, err = e.a.Health(ctx, facadeA, []string{"crm-db-1"})
	requireKind(t, drivers.Unreachable, err)
	requireKind(t, drivers.Unreachable, e.a.Stop(ctx, "e/stop-down", facadeA, []string{"crm-db-1"}))
	fresh, err := New(e.cfg)
	require.NoError(t, err)
	_, err = fresh.Health(ctx, facadeA, []string{"crm-db-1"})
	requireKind(t, drivers.Unreachable, err, "negotiating with a site that is down")

	// With A down, B's network that exists is taken as it is; one that
	// does not cannot get production's addressing.
	require.NoError(t, e.a.MapNetworks(ctx, "e/map-down", facadeB, []drivers.NetworkMapping{{From: "prod-db", To: "dr-db"}}))
	err = e.a.MapNetworks(ctx, "e/map-down2", facadeB, []drivers.NetworkMapping{{From: "prod-app", To: "dr-app"}})
	requireKind(t, drivers.Unreachable, err)
	require.Contains(t, err.Error(), "cannot copy the addressing of production network prod-app")

	// With A down, Boot at B takes the site's configured flavor.
	vols := []string{"crm-db-data"}
	require.NoError(t, e.client.SetSiteDown(ctx, facadeA, false))
	require.NoError(t, e.client.Demote(ctx, "e/demote", "a-block", vols))
	_, err = e.client.Promote(ctx, "e/promote", "b-block", vols, false)
	require.NoError(t, err)
	require.NoError(t, e.client.SetSiteDown(ctx, facadeA, true))
	require.NoError(t, e.a.Boot(ctx, "e/boot-down", facadeB, []drivers.BootSpec{{Name: "crm-db-1", Volumes: vols, Networks: []string{"dr-db"}}}))
	sc, _, err := e.a.nova(ctx, "test", facadeB)
	require.NoError(t, err)
	s, err := e.a.serverNamed(ctx, "test", sc, facadeB, "crm-db-1")
	require.NoError(t, err)
	require.Equal(t, "m1.large", s.Flavor["original_name"], "sites.site-b.flavor, since A does not answer")

	// DNS at a site that is down.
	require.NoError(t, e.client.SetSiteDown(ctx, facadeB, true))
	_, err = e.a.Get(ctx, "crm.demo.example", "A")
	requireKind(t, drivers.Unreachable, err)
	requireKind(t, drivers.Unreachable, e.a.Replace(ctx, "e/dns", drivers.Record{Name: "crm.demo.example", Type: "A", TTL: 30, Value: "10.2.0.20"}))

	// Without dns_site the DNS port says what is missing.
	cfg = e.cfg
	cfg.DNSSite = ""
	noDNS, err := New(cfg)
	require.NoError(t, err)
	_, err = noDNS.Get(ctx, "crm.demo.example", "A")
	requireKind(t, drivers.Permanent, err)
	require.Contains(t, err.Error(), "dns_site is not set")
}
