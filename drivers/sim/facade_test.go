package sim_test

// Raw HTTP against the simulator's OpenStack-API facade (Nova, Neutron,
// Designate): every request here goes to the SIMULATOR's facade, never to
// a real cloud, and every answer must say so (X-Ferry-Facade: simulator).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
)

// cfEnv is a simulator served over HTTP with the demo-like inventory of
// sim_test.go, and its facade's base URL.
type cfEnv struct {
	t      *testing.T
	cloud  *sim.Cloud
	client *sim.Client
	base   string // http://host/openstack
}

func newCFEnv(t *testing.T) *cfEnv {
	t.Helper()
	cloud := sim.NewCloud(sim.Options{Now: newClock().Now})
	srv := httptest.NewServer(sim.NewHandler(cloud))
	t.Cleanup(srv.Close)
	client := sim.NewClient(srv.URL, srv.Client())
	require.NoError(t, client.LoadInventory(context.Background(), inventory()))
	t.Logf("talking to the simulator's OpenStack-API facade at %s/openstack (not a real cloud)", srv.URL)
	return &cfEnv{t: t, cloud: cloud, client: client, base: srv.URL + "/openstack"}
}

// cfResp is one facade answer.
type cfResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends one request; it fails the test if the answer is not marked
// as the simulator's facade.
func (e *cfEnv) call(method, path string, body any, hdr ...string) cfResp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(e.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("X-Auth-Token", "admin:ferry-test")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	require.Equal(e.t, "simulator", resp.Header.Get(sim.FacadeHeader), "%s %s: every facade answer says it is the simulator's", method, path)
	out := cfResp{status: resp.StatusCode, header: resp.Header, raw: string(data)}
	if len(bytes.TrimSpace(data)) > 0 {
		require.NoError(e.t, json.Unmarshal(data, &out.body), "%s %s: %s", method, path, data)
	}
	return out
}

// unreachable asserts that the endpoint gives no HTTP answer at all.
func (e *cfEnv) unreachable(method, path string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	require.NoError(e.t, err)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(e.t, err, "%s %s: a site that is down must not answer", method, path)
}

func cfObj(t *testing.T, v any, key string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "not an object: %v", v)
	o, ok := m[key].(map[string]any)
	require.True(t, ok, "no object %q in %v", key, m)
	return o
}

func cfList(t *testing.T, v map[string]any, key string) []map[string]any {
	t.Helper()
	raw, ok := v[key].([]any)
	require.True(t, ok, "no list %q in %v", key, v)
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

// promoteVolumes makes the inventory's volumes active at site-b through the
// simulator's own storage calls (a planned failover of the storage).
func (e *cfEnv) promoteVolumes() {
	e.t.Helper()
	ctx := context.Background()
	require.NoError(e.t, e.client.Demote(ctx, "cf/demote", cinderA, vols))
	_, err := e.client.Promote(ctx, "cf/promote", cinderB, vols, false)
	require.NoError(e.t, err)
}

const cfNovaHeader = "X-OpenStack-Nova-API-Version"

// Nova's versions document, servers, os-stop/os-start and their 409s,
// boot from volume and delete, against the simulator's facade.
func TestFacadeComputeServers(t *testing.T) {
	e := newCFEnv(t)

	v := e.call("GET", "/site-a/compute/", nil)
	require.Equal(t, http.StatusOK, v.status)
	var v21 map[string]any
	for _, x := range cfList(t, v.body, "versions") {
		if x["id"] == "v2.1" {
			v21 = x
		}
	}
	require.NotNil(t, v21, "a v2.1 entry: %s", v.raw)
	require.Equal(t, "2.1", v21["min_version"])
	require.Equal(t, "2.90", v21["version"])

	bad := e.call("GET", "/site-a/compute/v2.1/servers/detail", nil, cfNovaHeader, "2.200")
	require.Equal(t, http.StatusNotAcceptable, bad.status, "a microversion above the maximum is refused: %s", bad.raw)

	r := e.call("GET", "/site-a/compute/v2.1/servers/detail", nil, cfNovaHeader, "2.90")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "compute 2.90", r.header.Get("OpenStack-API-Version"))
	servers := cfList(t, r.body, "servers")
	require.Len(t, servers, 2)
	db := servers[0]
	require.Equal(t, "db-1", db["name"])
	require.Equal(t, sim.FacadeID("server", siteA+"/db-1"), db["id"])
	require.Equal(t, "ACTIVE", db["status"])
	require.Equal(t, "active", db["OS-EXT-STS:vm_state"])
	require.Equal(t, "m1.small", cfObj(t, db, "flavor")["original_name"], "2.47+ embeds the flavor")
	old := e.call("GET", "/site-a/compute/v2.1/servers/"+db["id"].(string), nil, cfNovaHeader, "2.46")
	require.NotEmpty(t, cfObj(t, cfObj(t, old.body, "server"), "flavor")["id"], "below 2.47 the flavor is an id")

	byName := e.call("GET", "/site-a/compute/v2.1/servers/detail?name=%5Edb-1%24", nil)
	require.Len(t, cfList(t, byName.body, "servers"), 1, "name filters as a regular expression")

	id := db["id"].(string)
	act := func(action string) cfResp {
		return e.call("POST", "/site-a/compute/v2.1/servers/"+id+"/action", map[string]any{action: nil})
	}
	require.Equal(t, http.StatusAccepted, act("os-stop").status)
	st := e.call("GET", "/site-a/compute/v2.1/servers/"+id, nil)
	require.Equal(t, "SHUTOFF", cfObj(t, st.body, "server")["status"])
	require.Equal(t, float64(4), cfObj(t, st.body, "server")["OS-EXT-STS:power_state"])
	again := act("os-stop")
	require.Equal(t, http.StatusConflict, again.status)
	require.Contains(t, cfObj(t, again.body, "conflictingRequest")["message"], "vm_state stopped")
	require.Equal(t, http.StatusAccepted, act("os-start").status)
	require.Equal(t, "ACTIVE", cfObj(t, e.call("GET", "/site-a/compute/v2.1/servers/"+id, nil).body, "server")["status"])
	require.Equal(t, http.StatusConflict, act("os-start").status, "start needs SHUTOFF")
	require.Equal(t, drivers.ServerRunning, cfServerState(t, e.cloud, siteA, "db-1"), "the model is the facade's state")

	missing := e.call("GET", "/site-a/compute/v2.1/servers/"+sim.FacadeID("server", "nowhere/x"), nil)
	require.Equal(t, http.StatusNotFound, missing.status)
	require.Equal(t, float64(404), cfObj(t, missing.body, "itemNotFound")["code"])

	// Boot from a volume that is not active at site-b: Nova's 400.
	flavors := cfList(t, e.call("GET", "/site-b/compute/v2.1/flavors/detail", nil).body, "flavors")
	require.NotEmpty(t, flavors)
	create := func(networks any) cfResp {
		return e.call("POST", "/site-b/compute/v2.1/servers", map[string]any{"server": map[string]any{
			"name": "db-1", "flavorRef": flavors[0]["id"], "networks": networks,
			"block_device_mapping_v2": []map[string]any{{"source_type": "volume", "destination_type": "volume", "uuid": sim.FacadeID("volume", dbVol), "boot_index": 0}},
		}}, cfNovaHeader, "2.90")
	}
	refused := create("none")
	require.Equal(t, http.StatusBadRequest, refused.status)
	require.Contains(t, cfObj(t, refused.body, "badRequest")["message"], "not active at site site-b")
	noNets := e.call("POST", "/site-b/compute/v2.1/servers", map[string]any{"server": map[string]any{"name": "x", "flavorRef": flavors[0]["id"],
		"block_device_mapping_v2": []map[string]any{{"source_type": "volume", "destination_type": "volume", "uuid": sim.FacadeID("volume", dbVol), "boot_index": 0}}}}, cfNovaHeader, "2.37")
	require.Equal(t, http.StatusBadRequest, noNets.status, "from 2.37 networks is required")

	e.promoteVolumes()
	net := e.call("POST", "/site-b/network/v2.0/networks", map[string]any{"network": map[string]any{"name": "dr-net"}})
	require.Equal(t, http.StatusCreated, net.status, net.raw)
	netID := cfObj(t, net.body, "network")["id"].(string)
	sub := e.call("POST", "/site-b/network/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "cidr": "10.1.0.0/24", "ip_version": 4}})
	require.Equal(t, http.StatusCreated, sub.status, sub.raw)
	made := create([]map[string]any{{"uuid": netID, "fixed_ip": "10.1.0.10"}})
	require.Equal(t, http.StatusAccepted, made.status, made.raw)
	newID := cfObj(t, made.body, "server")["id"].(string)
	require.Equal(t, sim.FacadeID("server", siteB+"/db-1"), newID)
	shown := cfObj(t, e.call("GET", "/site-b/compute/v2.1/servers/"+newID, nil).body, "server")
	require.Equal(t, "ACTIVE", shown["status"])
	addrs := shown["addresses"].(map[string]any)["dr-net"].([]any)
	require.Equal(t, "10.1.0.10", addrs[0].(map[string]any)["addr"])
	require.Equal(t, sim.FacadeID("volume", dbVol), shown["os-extended-volumes:volumes_attached"].([]any)[0].(map[string]any)["id"])
	require.Equal(t, drivers.ServerRunning, cfServerState(t, e.cloud, siteB, "db-1"))
	ports := cfList(t, e.call("GET", "/site-b/network/v2.0/ports?device_id="+newID, nil).body, "ports")
	require.Len(t, ports, 1, "Nova made the server's port")
	dup := create("none")
	require.Equal(t, http.StatusConflict, dup.status, "one server per name and site: %s", dup.raw)

	require.Equal(t, http.StatusNoContent, e.call("DELETE", "/site-b/compute/v2.1/servers/"+newID, nil).status)
	require.Equal(t, http.StatusNotFound, e.call("GET", "/site-b/compute/v2.1/servers/"+newID, nil).status)
	require.Empty(t, cfList(t, e.call("GET", "/site-b/network/v2.0/ports?device_id="+newID, nil).body, "ports"), "Nova deletes the ports it made")
	require.Equal(t, drivers.ServerAbsent, cfServerState(t, e.cloud, siteB, "db-1"))
}

func cfServerState(t *testing.T, c *sim.Cloud, site, name string) string {
	t.Helper()
	hs, err := c.Health(context.Background(), site, []string{name})
	require.NoError(t, err)
	return hs[0].State
}

// Neutron's networks, tags, subnets and ports with fixed IPs, with its
// error shapes; a network tagged ferry-bubble is the simulator's bubble.
func TestFacadeNetworkResources(t *testing.T) {
	e := newCFEnv(t)
	v := e.call("GET", "/site-a/network/", nil)
	require.Equal(t, "v2.0", cfList(t, v.body, "versions")[0]["id"])

	nets := cfList(t, e.call("GET", "/site-a/network/v2.0/networks?name=prod-net", nil).body, "networks")
	require.Len(t, nets, 1, "the inventory's production network is the model's")
	prodID := nets[0]["id"].(string)
	require.Equal(t, sim.FacadeID("network", siteA+"/prod-net"), prodID)
	require.Equal(t, false, nets[0]["router:external"])

	dup := e.call("POST", "/site-a/network/v2.0/networks", map[string]any{"network": map[string]any{"name": "prod-net"}})
	require.Equal(t, http.StatusConflict, dup.status)
	require.Equal(t, "Conflict", cfObj(t, dup.body, "NeutronError")["type"])

	sub := e.call("POST", "/site-a/network/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": prodID, "name": "prod-sub", "cidr": "10.0.0.0/24", "ip_version": 4}})
	require.Equal(t, http.StatusCreated, sub.status, sub.raw)
	s := cfObj(t, sub.body, "subnet")
	subID := s["id"].(string)
	require.Equal(t, "10.0.0.1", s["gateway_ip"], "the first address is the default gateway")
	require.Equal(t, "10.0.0.2", s["allocation_pools"].([]any)[0].(map[string]any)["start"])
	overlap := e.call("POST", "/site-a/network/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": prodID, "cidr": "10.0.0.128/25"}})
	require.Equal(t, http.StatusBadRequest, overlap.status)
	noGW := e.call("POST", "/site-a/network/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": prodID, "cidr": "10.9.0.0/24", "gateway_ip": nil}})
	require.Equal(t, http.StatusCreated, noGW.status)
	require.Nil(t, cfObj(t, noGW.body, "subnet")["gateway_ip"], "gateway_ip null: no gateway")
	require.Len(t, cfList(t, e.call("GET", "/site-a/network/v2.0/subnets?network_id="+prodID, nil).body, "subnets"), 2)
	require.Equal(t, http.StatusNoContent, e.call("DELETE", "/site-a/network/v2.0/subnets/"+cfObj(t, noGW.body, "subnet")["id"].(string), nil).status)

	port := e.call("POST", "/site-a/network/v2.0/ports", map[string]any{"port": map[string]any{"network_id": prodID, "name": "db-1-port",
		"device_id": sim.FacadeID("server", siteA+"/db-1"), "device_owner": "compute:site-a", "fixed_ips": []map[string]any{{"ip_address": "10.0.0.10"}}}})
	require.Equal(t, http.StatusCreated, port.status, port.raw)
	p := cfObj(t, port.body, "port")
	require.Equal(t, subID, p["fixed_ips"].([]any)[0].(map[string]any)["subnet_id"])
	taken := e.call("POST", "/site-a/network/v2.0/ports", map[string]any{"port": map[string]any{"network_id": prodID, "fixed_ips": []map[string]any{{"ip_address": "10.0.0.10"}}}})
	require.Equal(t, http.StatusConflict, taken.status)
	require.Equal(t, "IpAddressAlreadyAllocated", cfObj(t, taken.body, "NeutronError")["type"])
	outside := e.call("POST", "/site-a/network/v2.0/ports", map[string]any{"port": map[string]any{"network_id": prodID, "fixed_ips": []map[string]any{{"ip_address": "192.168.1.1"}}}})
	require.Equal(t, http.StatusBadRequest, outside.status)
	auto := e.call("POST", "/site-a/network/v2.0/ports", map[string]any{"port": map[string]any{"network_id": prodID}})
	require.Equal(t, "10.0.0.2", cfObj(t, auto.body, "port")["fixed_ips"].([]any)[0].(map[string]any)["ip_address"], "the first free pool address")
	found := cfList(t, e.call("GET", "/site-a/network/v2.0/ports?fixed_ips=ip_address%3D10.0.0.10", nil).body, "ports")
	require.Len(t, found, 1)
	require.Equal(t, p["id"], found[0]["id"])
	server := e.call("GET", "/site-a/compute/v2.1/servers/"+sim.FacadeID("server", siteA+"/db-1"), nil)
	require.Equal(t, "10.0.0.10", cfObj(t, server.body, "server")["addresses"].(map[string]any)["prod-net"].([]any)[0].(map[string]any)["addr"], "Nova shows the port's address")

	inUse := e.call("DELETE", "/site-a/network/v2.0/networks/"+prodID, nil)
	require.Equal(t, http.StatusConflict, inUse.status)
	require.Equal(t, "NetworkInUse", cfObj(t, inUse.body, "NeutronError")["type"])
	inUseSub := e.call("DELETE", "/site-a/network/v2.0/subnets/"+subID, nil)
	require.Equal(t, http.StatusConflict, inUseSub.status)

	// A bubble: a network tagged ferry-bubble is the simulator's bubble,
	// and deleting it is DestroyBubble.
	b := e.call("POST", "/site-b/network/v2.0/networks", map[string]any{"network": map[string]any{"name": "drill", "tags": []string{sim.NeutronBubbleTag, "x"}}})
	require.Equal(t, http.StatusCreated, b.status, b.raw)
	bid := cfObj(t, b.body, "network")["id"].(string)
	require.ElementsMatch(t, []any{sim.NeutronBubbleTag, "x"}, cfObj(t, b.body, "network")["tags"])
	require.Len(t, e.cloud.State().Bubbles, 1)
	require.Equal(t, "drill", e.cloud.State().Bubbles[0].Name)
	require.Equal(t, http.StatusNoContent, e.call("GET", "/site-b/network/v2.0/networks/"+bid+"/tags/x", nil).status)
	require.Equal(t, http.StatusConflict, e.call("DELETE", "/site-b/network/v2.0/networks/"+bid+"/tags/"+sim.NeutronBubbleTag, nil).status)
	tagged := cfList(t, e.call("GET", "/site-b/network/v2.0/networks?tags="+sim.NeutronBubbleTag, nil).body, "networks")
	require.Len(t, tagged, 1)
	plain := e.call("POST", "/site-b/network/v2.0/networks", map[string]any{"network": map[string]any{"name": "later"}})
	pid := cfObj(t, plain.body, "network")["id"].(string)
	require.Equal(t, http.StatusCreated, e.call("PUT", "/site-b/network/v2.0/networks/"+pid+"/tags/"+sim.NeutronBubbleTag, nil).status)
	require.Len(t, e.cloud.State().Bubbles, 2, "tagging a network makes it a bubble of the model")
	require.Equal(t, http.StatusNoContent, e.call("DELETE", "/site-b/network/v2.0/networks/"+bid, nil).status)
	require.Equal(t, http.StatusNoContent, e.call("DELETE", "/site-b/network/v2.0/networks/"+pid, nil).status)
	require.Empty(t, e.cloud.State().Bubbles, "deleting the networks destroyed the bubbles")
	gone := e.call("GET", "/site-b/network/v2.0/networks/"+bid, nil)
	require.Equal(t, http.StatusNotFound, gone.status)
	require.Equal(t, "NetworkNotFound", cfObj(t, gone.body, "NeutronError")["type"])

	require.Equal(t, http.StatusNoContent, e.call("DELETE", "/site-a/network/v2.0/ports/"+p["id"].(string), nil).status)
	require.Equal(t, http.StatusNoContent, e.call("DELETE", "/site-a/network/v2.0/ports/"+cfObj(t, auto.body, "port")["id"].(string), nil).status)
	require.Equal(t, http.StatusNoContent, e.call("DELETE", "/site-a/network/v2.0/networks/"+prodID, nil).status)
	require.Empty(t, cfList(t, e.call("GET", "/site-a/network/v2.0/subnets", nil).body, "subnets"), "a network's subnets go with it")
	for _, n := range e.cloud.State().Networks {
		require.NotEqual(t, "prod-net", n.Name, "the model's network is gone")
	}
}

// Designate's zones and recordsets on the model's records, with its error
// shape.
func TestFacadeDNSRecordsets(t *testing.T) {
	e := newCFEnv(t)
	ctx := context.Background()
	zones := cfList(t, e.call("GET", "/site-b/dns/v2/zones?name=example.com.", nil).body, "zones")
	require.Len(t, zones, 1, "the inventory's record gets its parent's zone")
	zid := zones[0]["id"].(string)
	require.Equal(t, sim.FacadeID("zone", "example.com."), zid)

	rs := cfList(t, e.call("GET", "/site-b/dns/v2/zones/"+zid+"/recordsets?name=shop.example.com.&type=A", nil).body, "recordsets")
	require.Len(t, rs, 1)
	require.Equal(t, "shop.example.com.", rs[0]["name"])
	require.Equal(t, []any{primaryIP}, rs[0]["records"])
	require.Equal(t, float64(60), rs[0]["ttl"])
	rsID := rs[0]["id"].(string)

	up := e.call("PUT", "/site-b/dns/v2/zones/"+zid+"/recordsets/"+rsID, map[string]any{"records": []string{drIP}, "ttl": 30})
	require.Equal(t, http.StatusAccepted, up.status, up.raw)
	rec, err := e.cloud.Get(ctx, shopHost, "A")
	require.NoError(t, err)
	require.Equal(t, drIP, rec.Value, "the facade changed the model's record")
	require.Equal(t, 30, rec.TTL)
	got := e.call("GET", "/site-a/dns/v2/zones/"+zid+"/recordsets/"+rsID, nil)
	require.Equal(t, []any{drIP}, got.body["records"], "one DNS for every site's endpoint")

	two := e.call("PUT", "/site-b/dns/v2/zones/"+zid+"/recordsets/"+rsID, map[string]any{"records": []string{"1.1.1.1", "2.2.2.2"}})
	require.Equal(t, http.StatusBadRequest, two.status)
	require.Equal(t, "invalid_object", two.body["type"])

	made := e.call("POST", "/site-b/dns/v2/zones/"+zid+"/recordsets", map[string]any{"name": "api.example.com.", "type": "A", "ttl": 120, "records": []string{"10.1.0.11"}})
	require.Equal(t, http.StatusAccepted, made.status, made.raw)
	require.Equal(t, "ACTIVE", made.body["status"])
	rec, err = e.cloud.Get(ctx, "api.example.com", "A")
	require.NoError(t, err)
	require.Equal(t, "10.1.0.11", rec.Value)
	again := e.call("POST", "/site-b/dns/v2/zones/"+zid+"/recordsets", map[string]any{"name": "api.example.com.", "type": "A", "records": []string{"10.1.0.12"}})
	require.Equal(t, http.StatusConflict, again.status)
	require.Equal(t, "duplicate_recordset", again.body["type"])
	outside := e.call("POST", "/site-b/dns/v2/zones/"+zid+"/recordsets", map[string]any{"name": "x.other.org.", "type": "A", "records": []string{"1.2.3.4"}})
	require.Equal(t, http.StatusBadRequest, outside.status)

	del := e.call("DELETE", "/site-b/dns/v2/zones/"+zid+"/recordsets/"+made.body["id"].(string), nil)
	require.Equal(t, http.StatusAccepted, del.status)
	_, err = e.cloud.Get(ctx, "api.example.com", "A")
	require.Error(t, err, "the record left the model")
	nf := e.call("GET", "/site-b/dns/v2/zones/"+zid+"/recordsets/"+made.body["id"].(string), nil)
	require.Equal(t, http.StatusNotFound, nf.status)
	require.Equal(t, float64(404), nf.body["code"])
	require.Equal(t, "recordset_not_found", nf.body["type"])

	z := e.call("POST", "/site-b/dns/v2/zones", map[string]any{"name": "drill.example.org.", "email": "ops@example.org", "ttl": 300})
	require.Equal(t, http.StatusAccepted, z.status, z.raw)
	r := e.call("POST", "/site-b/dns/v2/zones/"+z.body["id"].(string)+"/recordsets", map[string]any{"name": "www.drill.example.org.", "type": "CNAME", "records": []string{"shop.example.com."}})
	require.Equal(t, float64(300), r.body["ttl"], "a recordset without ttl takes the zone's")
	require.Equal(t, http.StatusConflict, e.call("POST", "/site-b/dns/v2/zones", map[string]any{"name": "drill.example.org.", "email": "ops@example.org"}).status)
	require.Equal(t, http.StatusAccepted, e.call("DELETE", "/site-b/dns/v2/zones/"+z.body["id"].(string), nil).status)
	_, err = e.cloud.Get(ctx, "www.drill.example.org", "CNAME")
	require.Error(t, err, "deleting a zone deletes its recordsets")
	require.Equal(t, "zone_not_found", e.call("GET", "/site-b/dns/v2/zones/"+z.body["id"].(string), nil).body["type"])
}

// The simulator's faults reach the facade: a site that is down does not
// answer at any of its endpoints; an injected retryable fault is a 503 in
// the service's shape, a permanent one a 400; unknown sites and routes are
// 404s that say they are the facade's.
func TestFacadeFaultsAndSiteDown(t *testing.T) {
	e := newCFEnv(t)
	ctx := context.Background()

	e.cloud.InjectFault(sim.Fault{Op: "compute.health", Times: 1})
	r := e.call("GET", "/site-a/compute/v2.1/servers/detail", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Contains(t, cfObj(t, r.body, "serviceUnavailable")["message"], "injected fault")
	require.Equal(t, http.StatusOK, e.call("GET", "/site-a/compute/v2.1/servers/detail", nil).status, "the fault hit once")

	e.cloud.InjectFault(sim.Fault{Op: "compute.stop", Kind: drivers.Permanent, Times: 1})
	id := sim.FacadeID("server", siteA+"/web-1")
	r = e.call("POST", "/site-a/compute/v2.1/servers/"+id+"/action", map[string]any{"os-stop": nil})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, drivers.ServerRunning, cfServerState(t, e.cloud, siteA, "web-1"), "a refused stop changed nothing")

	e.cloud.InjectFault(sim.Fault{Op: "network.show", Times: 1})
	r = e.call("GET", "/site-a/network/v2.0/networks", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "ServiceUnavailable", cfObj(t, r.body, "NeutronError")["type"])

	e.cloud.InjectFault(sim.Fault{Op: "dns.replace", Times: 1})
	zid := sim.FacadeID("zone", "example.com.")
	r = e.call("PUT", "/site-a/dns/v2/zones/"+zid+"/recordsets/"+sim.FacadeID("recordset", "shop.example.com./A"), map[string]any{"records": []string{drIP}})
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "service_unavailable", r.body["type"])

	nosite := e.call("GET", "/nowhere/compute/v2.1/servers", nil)
	require.Equal(t, http.StatusNotFound, nosite.status)
	require.Contains(t, cfObj(t, nosite.body, "itemNotFound")["message"], "simulator")
	noroute := e.call("GET", "/site-a/network/v2.0/routers", nil)
	require.Equal(t, http.StatusNotFound, noroute.status)
	require.Contains(t, cfObj(t, noroute.body, "NeutronError")["message"], "does not implement")

	require.NoError(t, e.client.SetSiteDown(ctx, siteA, true))
	for _, p := range []string{"/site-a/compute/", "/site-a/compute/v2.1/servers/detail", "/site-a/network/v2.0/networks", "/site-a/dns/v2/zones"} {
		e.unreachable("GET", p)
	}
	e.unreachable("POST", "/site-a/compute/v2.1/servers/"+id+"/action")
	require.Equal(t, http.StatusOK, e.call("GET", "/site-b/compute/v2.1/servers/detail", nil).status, "the other site still answers")
	require.NoError(t, e.client.SetSiteDown(ctx, siteA, false))
	require.Equal(t, http.StatusOK, e.call("GET", "/site-a/compute/v2.1/servers/detail", nil).status)
	require.True(t, strings.HasPrefix(e.call("GET", "/site-a/compute/", nil).header.Get("X-Openstack-Request-Id"), "req-"))
}
