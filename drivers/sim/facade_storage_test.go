package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
)

// These tests speak raw HTTP to the simulator's Cinder and Manila facades
// (facade_storage.go) loaded with the demo inventory, and hold what the
// facades answer against the simulator's own state.

type facadeEnv struct {
	t     *testing.T
	cloud *sim.Cloud
	srv   *httptest.Server
}

func newFacadeEnv(t *testing.T) *facadeEnv {
	t.Helper()
	cloud := sim.NewCloud(sim.Options{})
	require.NoError(t, cloud.LoadInventory(demo.Inventory()))
	srv := httptest.NewServer(sim.NewHandler(cloud))
	t.Cleanup(srv.Close)
	return &facadeEnv{t: t, cloud: cloud, srv: srv}
}

// call sends one request; mv is "volume 3.70" or "manila 2.73" ("" for
// none). It returns the status, the headers and the decoded JSON body.
func (e *facadeEnv) call(method, path, mv string, body any) (int, http.Header, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(e.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("X-Auth-Token", "admin:"+sim.FacadeProjectID)
	req.Header.Set("Content-Type", "application/json")
	if svc, v, ok := strings.Cut(mv, " "); ok {
		if svc == "manila" {
			req.Header.Set("X-OpenStack-Manila-API-Version", v)
		} else {
			req.Header.Set("OpenStack-API-Version", mv)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err, "%s %s", method, path)
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	require.Equal(e.t, "simulator", resp.Header.Get("X-Ferry-Facade"), "%s %s: every facade answer says what it is", method, path)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		require.NoError(e.t, json.Unmarshal(data, &out), "%s %s answered %s", method, path, data)
	}
	return resp.StatusCode, resp.Header, out
}

func cinderPath(site, rest string) string {
	return "/openstack/" + site + "/volume/v3/" + sim.FacadeProjectID + "/" + rest
}

func manilaPath(site, rest string) string {
	return "/openstack/" + site + "/share/v2/" + sim.FacadeProjectID + "/" + rest
}

func jsonList(t *testing.T, body map[string]any, key string) []map[string]any {
	t.Helper()
	raw, ok := body[key].([]any)
	require.True(t, ok, "no %s list in %v", key, body)
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

func resInfo(t *testing.T, c *sim.Cloud, name string) sim.ResourceInfo {
	t.Helper()
	ri, err := c.ResourceInfo(name)
	require.NoError(t, err)
	return ri
}

func TestFacadeStorageVersions(t *testing.T) {
	e := newFacadeEnv(t)
	code, _, body := e.call(http.MethodGet, "/openstack/site-a/volume/", "", nil)
	require.Equal(t, http.StatusMultipleChoices, code)
	v := jsonList(t, body, "versions")
	require.Len(t, v, 1)
	require.Equal(t, "v3.0", v[0]["id"])
	require.Equal(t, "3.0", v[0]["min_version"])
	require.Equal(t, "3.70", v[0]["version"])

	code, _, body = e.call(http.MethodGet, "/openstack/site-b/share/", "", nil)
	require.Equal(t, http.StatusMultipleChoices, code)
	v = jsonList(t, body, "versions")
	require.Len(t, v, 2)
	require.Equal(t, "v2.0", v[1]["id"])
	require.Equal(t, "2.0", v[1]["min_version"])
	require.Equal(t, "2.73", v[1]["version"], "Zed's Manila: no quiesce_wait_time (2.75)")

	// Negotiation: the answer names the version it used; one out of range
	// is refused as Cinder and Manila refuse it.
	code, h, _ := e.call(http.MethodGet, cinderPath("site-a", "volumes"), "volume 3.44", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "volume 3.44", h.Get("OpenStack-API-Version"))
	code, _, body = e.call(http.MethodGet, cinderPath("site-a", "volumes"), "volume 3.71", nil)
	require.Equal(t, http.StatusNotAcceptable, code)
	require.Contains(t, body["computeFault"].(map[string]any)["message"], "maximum is 3.70")
	code, h, _ = e.call(http.MethodGet, manilaPath("site-a", "shares"), "manila 2.73", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "2.73", h.Get("X-OpenStack-Manila-API-Version"))
	code, _, _ = e.call(http.MethodGet, manilaPath("site-a", "shares"), "manila 2.75", nil)
	require.Equal(t, http.StatusNotAcceptable, code)
}

func TestFacadeCinderListings(t *testing.T) {
	e := newFacadeEnv(t)
	code, _, body := e.call(http.MethodGet, cinderPath("site-a", "volumes/detail?all_tenants=1"), "volume 3.70", nil)
	require.Equal(t, http.StatusOK, code)
	vols := jsonList(t, body, "volumes")
	require.Len(t, vols, 9, "site-a's Cinder holds the demo's nine volumes")
	crm := sim.FacadeID("group", "crm@a-block")
	byName := map[string]map[string]any{}
	for _, v := range vols {
		byName[v["name"].(string)] = v
	}
	db := byName["crm-db-data"]
	require.Equal(t, sim.FacadeID("volume", "crm-db-data"), db["id"])
	require.Equal(t, "a-volume-1@a-block#pool", db["os-vol-host-attr:host"])
	require.Equal(t, "enabled", db["replication_status"])
	require.Equal(t, "available", db["status"])
	require.Equal(t, crm, db["group_id"])
	require.Equal(t, "site-a", db["availability_zone"])

	_, _, body = e.call(http.MethodGet, cinderPath("site-a", "volumes/detail"), "volume 3.0", nil)
	require.NotContains(t, jsonList(t, body, "volumes")[0], "group_id", "group_id comes with 3.13")
	_, _, body = e.call(http.MethodGet, cinderPath("site-b", "volumes/detail?name=crm-db-data"), "volume 3.70", nil)
	same := jsonList(t, body, "volumes")
	require.Len(t, same, 1, "one Cinder: the DR site's endpoint shows the same volume")
	for _, k := range []string{"id", "os-vol-host-attr:host", "replication_status", "group_id", "availability_zone"} {
		require.Equal(t, db[k], same[0][k], k)
	}

	_, _, body = e.call(http.MethodGet, cinderPath("site-b", "os-services?binary=cinder-volume"), "volume 3.70", nil)
	svcs := jsonList(t, body, "services")
	require.Len(t, svcs, 4, "one cinder-volume per member of a-block and b-block")
	for _, s := range svcs[1:] {
		require.Equal(t, "b-block@b-block", s["cluster"])
		require.Equal(t, "enabled", s["replication_status"])
		require.Equal(t, "up", s["state"])
		require.Equal(t, "site-b", s["zone"])
	}
	require.Equal(t, "a-volume-1@a-block", svcs[0]["host"])
	require.Nil(t, svcs[0]["cluster"], "a backend of one member is no cluster")
	_, _, body = e.call(http.MethodGet, cinderPath("site-b", "clusters/detail?name=b-block@b-block"), "volume 3.70", nil)
	cl := jsonList(t, body, "clusters")
	require.Len(t, cl, 1)
	require.EqualValues(t, 3, cl[0]["num_hosts"])
	require.Equal(t, "enabled", cl[0]["replication_status"])
	code, _, _ = e.call(http.MethodGet, cinderPath("site-b", "clusters/detail"), "volume 3.6", nil)
	require.Equal(t, http.StatusNotFound, code, "clusters come with 3.7")

	_, _, body = e.call(http.MethodGet, cinderPath("site-a", "groups/detail?list_volume=True"), "volume 3.70", nil)
	groups := jsonList(t, body, "groups")
	require.Len(t, groups, 2)
	require.Equal(t, "crm", groups[0]["name"])
	require.Equal(t, crm, groups[0]["id"])
	require.Equal(t, "enabled", groups[0]["replication_status"])
	require.Len(t, groups[0]["volumes"], 3)
	_, _, body = e.call(http.MethodGet, cinderPath("site-a", "groups/"+crm), "volume 3.37", nil)
	require.NotContains(t, body["group"], "replication_status", "replication_status comes with 3.38")
	_, _, body = e.call(http.MethodGet, cinderPath("site-a", "group_types/"+groups[0]["group_type"].(string)), "volume 3.70", nil)
	require.Equal(t, "<is> True", body["group_type"].(map[string]any)["group_specs"].(map[string]any)["consistent_group_replication_enabled"])

	code, _, body = e.call(http.MethodPost, cinderPath("site-a", "groups/"+crm+"/action"), "volume 3.70", map[string]any{"list_replication_targets": map[string]any{}})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{map[string]any{"backend_id": "site-b"}}, body["replication_targets"])
}

// A group's failover_replication moves the simulator's active replicas: a
// planned one hands every write over, a forced one (the sites cut apart)
// loses what the target lacked, as the simulator counts it; "default"
// brings the group home.
func TestFacadeCinderGroupFailover(t *testing.T) {
	e := newFacadeEnv(t)
	crm := sim.FacadeID("group", "crm@a-block")
	action := func(body map[string]any) int {
		code, _, _ := e.call(http.MethodPost, cinderPath("site-a", "groups/"+crm+"/action"), "volume 3.70", body)
		return code
	}
	_, err := e.cloud.Write("crm-db-data", 5)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, action(map[string]any{"failover_replication": map[string]any{"allow_attached_volume": true, "secondary_backend_id": "site-b"}}))
	for _, v := range []string{"crm-db-data", "crm-app-root", "crm-web-root"} {
		ri := resInfo(t, e.cloud, v)
		require.Equal(t, "b-block", ri.ActiveBackend, "%s is active at the target", v)
		require.Zero(t, ri.LostWrites, "a planned group failover hands every write over")
	}
	require.Equal(t, int64(5), resInfo(t, e.cloud, "crm-db-data").ActiveSeq)
	require.Equal(t, "a-block", resInfo(t, e.cloud, "shop-db-data").ActiveBackend, "another group stays")
	_, _, body := e.call(http.MethodGet, cinderPath("site-a", "groups/"+crm), "volume 3.70", nil)
	require.Equal(t, "failed-over", body["group"].(map[string]any)["replication_status"])
	_, _, body = e.call(http.MethodGet, cinderPath("site-a", "volumes/"+sim.FacadeID("volume", "crm-db-data")), "volume 3.70", nil)
	require.Equal(t, "failed-over", body["volume"].(map[string]any)["replication_status"])
	require.Equal(t, "a-volume-1@a-block#pool", body["volume"].(map[string]any)["os-vol-host-attr:host"], "the record stays where it was created")

	require.Equal(t, http.StatusAccepted, action(map[string]any{"failover_replication": map[string]any{"secondary_backend_id": "default"}}))
	require.Equal(t, "a-block", resInfo(t, e.cloud, "crm-db-data").ActiveBackend)

	// A target whose site is down does not answer.
	require.NoError(t, e.cloud.SetSiteDown("site-b", true))
	e.dropped(http.MethodPost, cinderPath("site-a", "groups/"+crm+"/action"), "volume 3.70",
		map[string]any{"failover_replication": map[string]any{"secondary_backend_id": "site-b"}})
	require.NoError(t, e.cloud.SetSiteDown("site-b", false))
	require.Equal(t, "a-block", resInfo(t, e.cloud, "crm-db-data").ActiveBackend)

	// Forced: the sites cannot talk, so the target keeps what it applied.
	require.NoError(t, e.cloud.SetPartition("site-a", "site-b", true))
	_, err = e.cloud.Write("crm-db-data", 3)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, action(map[string]any{"failover_replication": map[string]any{"secondary_backend_id": "site-b"}}))
	ri := resInfo(t, e.cloud, "crm-db-data")
	require.Equal(t, "b-block", ri.ActiveBackend)
	require.Equal(t, int64(3), ri.LostWrites, "the forced failover lost the three writes the target never got")

	// Refusals in Cinder's shape.
	code, _, body := e.call(http.MethodPost, cinderPath("site-a", "groups/"+crm+"/action"), "volume 3.70",
		map[string]any{"failover_replication": map[string]any{"secondary_backend_id": "nowhere"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body["badRequest"].(map[string]any)["message"], "nowhere")
	code, _, _ = e.call(http.MethodPost, cinderPath("site-a", "groups/"+crm+"/action"), "volume 3.37",
		map[string]any{"failover_replication": map[string]any{"secondary_backend_id": "site-b"}})
	require.Equal(t, http.StatusNotFound, code, "group replication comes with 3.38")
	code, _, body = e.call(http.MethodGet, cinderPath("site-a", "groups/"+sim.FacadeID("group", "nope")), "volume 3.70", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body["itemNotFound"].(map[string]any)["message"], "could not be found")
}

func TestFacadeCinderGroupReplicationLifecycle(t *testing.T) {
	e := newFacadeEnv(t)
	shop := sim.FacadeID("group", "shop@a-block")
	action := func(body map[string]any) (int, map[string]any) {
		code, _, out := e.call(http.MethodPost, cinderPath("site-a", "groups/"+shop+"/action"), "volume 3.70", body)
		return code, out
	}
	code, _ := action(map[string]any{"disable_replication": map[string]any{}})
	require.Equal(t, http.StatusAccepted, code)
	require.Len(t, resInfo(t, e.cloud, "shop-db-data").Replicas, 1, "disable_replication removes the secondary")
	_, _, body := e.call(http.MethodGet, cinderPath("site-a", "groups/"+shop), "volume 3.70", nil)
	require.Equal(t, "disabled", body["group"].(map[string]any)["replication_status"])
	code, body = action(map[string]any{"failover_replication": map[string]any{"secondary_backend_id": "site-b"}})
	require.Equal(t, http.StatusBadRequest, code, "a group without replication cannot fail over: %v", body)

	code, _ = action(map[string]any{"enable_replication": map[string]any{}})
	require.Equal(t, http.StatusAccepted, code)
	ri := resInfo(t, e.cloud, "shop-db-data")
	require.Len(t, ri.Replicas, 2)
	_, _, body = e.call(http.MethodGet, cinderPath("site-a", "groups/"+shop), "volume 3.70", nil)
	require.Equal(t, "enabled", body["group"].(map[string]any)["replication_status"])
}

func TestFacadeCinderServiceActions(t *testing.T) {
	e := newFacadeEnv(t)
	put := func(action, mv string, body map[string]any) (int, map[string]any) {
		code, _, out := e.call(http.MethodPut, cinderPath("site-a", "os-services/"+action), mv, body)
		return code, out
	}
	backend := func(name string) sim.BackendState {
		for _, b := range e.cloud.State().Backends {
			if b.Name == name {
				return b
			}
		}
		t.Fatalf("no backend %s", name)
		return sim.BackendState{}
	}
	code, _ := put("freeze", "volume 3.0", map[string]any{"host": "a-volume-1@a-block"})
	require.Equal(t, http.StatusOK, code)
	require.True(t, backend("a-block").Frozen)
	_, _, body := e.call(http.MethodGet, cinderPath("site-a", "os-services?host=a-volume-1@a-block"), "volume 3.70", nil)
	svc := jsonList(t, body, "services")[0]
	require.Equal(t, true, svc["frozen"])
	require.Equal(t, "disabled", svc["status"], "a frozen service is disabled, as cinder-volume leaves it")
	code, _ = put("freeze", "volume 3.0", map[string]any{"host": "a-volume-1@a-block"})
	require.Equal(t, http.StatusBadRequest, code, "freezing a frozen service is refused")

	// failover_host to a target whose site is down: no answer.
	require.NoError(t, e.cloud.SetSiteDown("site-b", true))
	e.dropped(http.MethodPut, cinderPath("site-a", "os-services/failover_host"), "volume 3.0", map[string]any{"host": "a-volume-1@a-block", "backend_id": "site-b"})
	require.NoError(t, e.cloud.SetSiteDown("site-b", false))
	require.Equal(t, "enabled", backend("a-block").ReplicationStatus)

	// failover_host to an unknown target: accepted, nothing changes.
	code, _ = put("failover_host", "volume 3.0", map[string]any{"host": "a-volume-1@a-block", "backend_id": "nowhere"})
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, "enabled", backend("a-block").ReplicationStatus)
	code, _ = put("failover_host", "volume 3.0", map[string]any{"host": "a-volume-1@a-block", "backend_id": "site-b"})
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, "failed-over", backend("a-block").ReplicationStatus)
	require.Equal(t, "site-b", backend("a-block").ActiveBackendID)
	require.Equal(t, "b-block", resInfo(t, e.cloud, "crm-db-data").ActiveBackend)

	code, _ = put("thaw", "volume 3.0", map[string]any{"host": "a-volume-1@a-block"})
	require.Equal(t, http.StatusOK, code)
	require.False(t, backend("a-block").Frozen)
	code, body = put("failover", "volume 3.25", map[string]any{"cluster": "b-block@b-block"})
	require.Equal(t, http.StatusBadRequest, code, "the cluster failover comes with 3.26: %v", body)
	code, body = put("freeze", "volume 3.70", map[string]any{"host": "a-volume-1@a-block", "cluster": "b-block@b-block"})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body["badRequest"].(map[string]any)["message"], "One and only one of cluster and host")
	code, _ = e.call3(http.MethodPut, cinderPath("site-b", "os-services/freeze"), "volume 3.26", map[string]any{"cluster": "b-block@b-block"})
	require.Equal(t, http.StatusOK, code)
	require.True(t, backend("b-block").Frozen)
}

// dropped asserts that the facade answers the request by closing the
// connection: what a client sees of storage at a site that is down.
func (e *facadeEnv) dropped(method, path, mv string, body any) {
	e.t.Helper()
	data, err := json.Marshal(body)
	require.NoError(e.t, err)
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(data))
	require.NoError(e.t, err)
	req.Header.Set("OpenStack-API-Version", mv)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(e.t, err, "%s %s answered %v", method, path, resp)
}

func (e *facadeEnv) call3(method, path, mv string, body any) (int, map[string]any) {
	code, _, out := e.call(method, path, mv, body)
	return code, out
}

// Group snapshots are the simulator's SnapshotGroup; create-from-src makes
// the drill's clones of the active copies; deleting the clone group
// removes them.
func TestFacadeCinderGroupSnapshotsAndClones(t *testing.T) {
	e := newFacadeEnv(t)
	crm := sim.FacadeID("group", "crm@a-block")
	code, body := e.call3(http.MethodPost, cinderPath("site-a", "group_snapshots"), "volume 3.70",
		map[string]any{"group_snapshot": map[string]any{"group_id": crm, "name": "snap-1"}})
	require.Equal(t, http.StatusAccepted, code)
	gsID := body["group_snapshot"].(map[string]any)["id"].(string)
	_, body = e.call3(http.MethodGet, cinderPath("site-a", "group_snapshots/"+gsID), "volume 3.70", nil)
	require.Equal(t, "available", body["group_snapshot"].(map[string]any)["status"])
	require.Equal(t, crm, body["group_snapshot"].(map[string]any)["group_id"])
	var snapshotTaken bool
	for _, l := range e.cloud.Ledger() {
		snapshotTaken = snapshotTaken || (l.Op == "storage.snapshot_group" && l.Target == "a-block" && l.Outcome == sim.OutcomeApplied)
	}
	require.True(t, snapshotTaken, "a group snapshot is the simulator's SnapshotGroup on the active backend")

	code, body = e.call3(http.MethodPost, cinderPath("site-a", "groups/action"), "volume 3.70",
		map[string]any{"create-from-src": map[string]any{"group_snapshot_id": gsID, "name": "drill"}})
	require.Equal(t, http.StatusAccepted, code)
	cloneGroup := body["group"].(map[string]any)["id"].(string)
	st := e.cloud.State()
	require.Len(t, st.Clones, 3)
	for _, c := range st.Clones {
		require.Equal(t, "a-block", c.Backend, "Cinder copies the active data, where the group is served")
	}
	_, body = e.call3(http.MethodGet, cinderPath("site-a", "volumes/detail?group_id="+cloneGroup), "volume 3.70", nil)
	vols := jsonList(t, body, "volumes")
	require.Len(t, vols, 3)
	var ids, want []string
	for _, v := range vols {
		ids = append(ids, v["id"].(string))
		require.Equal(t, "a-volume-1@a-block#pool", v["os-vol-host-attr:host"])
		_, s := e.call3(http.MethodGet, cinderPath("site-a", "snapshots/"+v["snapshot_id"].(string)), "volume 3.70", nil)
		require.NotEmpty(t, s["snapshot"].(map[string]any)["volume_id"], "a clone's snapshot names its volume")
	}
	for _, c := range st.Clones {
		want = append(want, sim.FacadeID("volume", c.ID))
	}
	sort.Strings(ids)
	sort.Strings(want)
	require.Equal(t, want, ids, "a clone volume's id is FacadeID(volume, clone id)")

	code, _ = e.call3(http.MethodPost, cinderPath("site-a", "groups/"+cloneGroup+"/action"), "volume 3.70", map[string]any{"delete": map[string]any{}})
	require.Equal(t, http.StatusBadRequest, code, "a group with volumes needs delete-volumes")
	code, _ = e.call3(http.MethodPost, cinderPath("site-a", "groups/"+cloneGroup+"/action"), "volume 3.70", map[string]any{"delete": map[string]any{"delete-volumes": true}})
	require.Equal(t, http.StatusAccepted, code)
	require.Empty(t, e.cloud.State().Clones)
	code, _ = e.call3(http.MethodGet, cinderPath("site-a", "groups/"+cloneGroup), "volume 3.70", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = e.call3(http.MethodPost, cinderPath("site-a", "groups/"+crm+"/action"), "volume 3.70", map[string]any{"delete": map[string]any{"delete-volumes": true}})
	require.Equal(t, http.StatusBadRequest, code, "the facade never deletes a protection group")
	code, _ = e.call3(http.MethodDelete, cinderPath("site-a", "group_snapshots/"+gsID), "volume 3.70", nil)
	require.Equal(t, http.StatusAccepted, code)
}

func TestFacadeManilaReplicas(t *testing.T) {
	e := newFacadeEnv(t)
	share := sim.FacadeID("share", "shop-media")
	_, body := e.call3(http.MethodGet, manilaPath("site-b", "shares/detail?all_tenants=true&name=shop-media"), "manila 2.73", nil)
	shares := jsonList(t, body, "shares")
	require.Len(t, shares, 1, "every site's endpoint shows the one Manila")
	require.Equal(t, share, shares[0]["id"])
	require.Equal(t, "readable", shares[0]["replication_type"])
	require.Equal(t, "a-share-1@a-files#pool", shares[0]["host"])
	require.Equal(t, true, shares[0]["has_replicas"])

	code, _ := e.call3(http.MethodGet, manilaPath("site-a", "share-replicas/detail?share_id="+share), "manila 2.55", nil)
	require.Equal(t, http.StatusNotFound, code, "below 2.56 the replicas API needs the experimental header")
	_, body = e.call3(http.MethodGet, manilaPath("site-a", "share-replicas/detail?share_id="+share), "manila 2.73", nil)
	reps := jsonList(t, body, "share_replicas")
	require.Len(t, reps, 2)
	state := map[string]string{}
	var drID string
	for _, r := range reps {
		state[r["host"].(string)] = r["replica_state"].(string)
		if r["availability_zone"] == "site-b" {
			drID = r["id"].(string)
		}
	}
	require.Equal(t, map[string]string{"a-share-1@a-files#pool": "active", "b-share-1@b-files#pool": "in_sync"}, state)
	require.Equal(t, sim.FacadeID("share-replica", "shop-media@b-files"), drID)

	_, err := e.cloud.Write("shop-media", 4)
	require.NoError(t, err)
	code, body = e.call3(http.MethodPost, manilaPath("site-a", "share-replicas/"+drID+"/action"), "manila 2.73", map[string]any{"promote": map[string]any{"quiesce_wait_time": 10}})
	require.Equal(t, http.StatusBadRequest, code, "quiesce_wait_time needs 2.75: %v", body)
	code, body = e.call3(http.MethodPost, manilaPath("site-a", "share-replicas/"+drID+"/action"), "manila 2.73", map[string]any{"promote": map[string]any{}})
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, "active", body["share_replica"].(map[string]any)["replica_state"])
	ri := resInfo(t, e.cloud, "shop-media")
	require.Equal(t, "b-files", ri.ActiveBackend, "promote moves the simulator's active replica")
	require.Zero(t, ri.LostWrites)
	require.Equal(t, int64(4), ri.ActiveSeq)
	code, _ = e.call3(http.MethodPost, manilaPath("site-a", "share-replicas/"+drID+"/action"), "manila 2.73", map[string]any{"promote": nil})
	require.Equal(t, http.StatusOK, code, "promoting the active replica is Manila's 200: nothing to do")

	oldID := sim.FacadeID("share-replica", "shop-media@a-files")
	code, _ = e.call3(http.MethodPost, manilaPath("site-b", "share-replicas/"+oldID+"/action"), "manila 2.73", map[string]any{"resync": nil})
	require.Equal(t, http.StatusAccepted, code)
	code, body = e.call3(http.MethodDelete, manilaPath("site-b", "share-replicas/"+drID), "manila 2.73", nil)
	require.Equal(t, http.StatusBadRequest, code, "the active replica cannot be deleted: %v", body)
	code, _ = e.call3(http.MethodDelete, manilaPath("site-b", "share-replicas/"+oldID), "manila 2.73", nil)
	require.Equal(t, http.StatusAccepted, code)
	require.Len(t, resInfo(t, e.cloud, "shop-media").Replicas, 1)
	code, _ = e.call3(http.MethodGet, manilaPath("site-b", "share-replicas/"+oldID), "manila 2.73", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, body = e.call3(http.MethodPost, manilaPath("site-b", "share-replicas"), "manila 2.73",
		map[string]any{"share_replica": map[string]any{"share_id": share, "availability_zone": "site-a"}})
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, oldID, body["share_replica"].(map[string]any)["id"])
	require.Len(t, resInfo(t, e.cloud, "shop-media").Replicas, 2)

	// The simulator's demoted active (a demote through its own API) is
	// promoted back in place; resync of it has nothing to do.
	require.NoError(t, e.cloud.Demote(context.Background(), "test/demote", "b-files", []string{"shop-media"}))
	code, _ = e.call3(http.MethodPost, manilaPath("site-a", "share-replicas/"+drID+"/action"), "manila 2.73", map[string]any{"resync": nil})
	require.Equal(t, http.StatusOK, code)
	_, err = e.cloud.Write("shop-media", 1)
	require.Error(t, err, "still demoted")
	code, _ = e.call3(http.MethodPost, manilaPath("site-a", "share-replicas/"+drID+"/action"), "manila 2.73", map[string]any{"promote": nil})
	require.Equal(t, http.StatusAccepted, code)
	_, err = e.cloud.Write("shop-media", 1)
	require.NoError(t, err, "promoted back: writable again")

	_, body = e.call3(http.MethodGet, manilaPath("site-a", "scheduler-stats/pools/detail"), "manila 2.73", nil)
	pools := jsonList(t, body, "pools")
	require.Len(t, pools, 2)
	require.Equal(t, "readable", pools[0]["capabilities"].(map[string]any)["replication_type"])
	_, body = e.call3(http.MethodGet, manilaPath("site-a", "availability-zones"), "manila 2.73", nil)
	require.Len(t, jsonList(t, body, "availability_zones"), 2)
}

func TestFacadeManilaSnapshotClones(t *testing.T) {
	e := newFacadeEnv(t)
	share := sim.FacadeID("share", "shop-media")
	code, body := e.call3(http.MethodPost, manilaPath("site-b", "snapshots"), "manila 2.73",
		map[string]any{"snapshot": map[string]any{"share_id": share, "name": "ferry-drill-x"}})
	require.Equal(t, http.StatusAccepted, code)
	snapID := body["snapshot"].(map[string]any)["id"].(string)
	code, body = e.call3(http.MethodPost, manilaPath("site-b", "shares"), "manila 2.73", map[string]any{"share": map[string]any{
		"name": "ferry-drill-x-shop-media", "share_proto": "NFS", "size": 1, "snapshot_id": snapID, "availability_zone": "site-b"}})
	require.Equal(t, http.StatusOK, code)
	clone := body["share"].(map[string]any)
	require.Equal(t, "b-share-1@b-files#pool", clone["host"], "the clone is made from the replica in the zone asked")
	st := e.cloud.State()
	require.Len(t, st.Clones, 1)
	require.Equal(t, "b-files", st.Clones[0].Backend)
	require.Equal(t, sim.FacadeID("share", st.Clones[0].ID), clone["id"])
	code, _ = e.call3(http.MethodDelete, manilaPath("site-b", "shares/"+share), "manila 2.73", nil)
	require.Equal(t, http.StatusBadRequest, code, "a replicated share is not deleted")
	code, _ = e.call3(http.MethodDelete, manilaPath("site-b", "shares/"+clone["id"].(string)), "manila 2.73", nil)
	require.Equal(t, http.StatusAccepted, code)
	require.Empty(t, e.cloud.State().Clones)
	code, _ = e.call3(http.MethodGet, manilaPath("site-b", "shares/"+clone["id"].(string)), "manila 2.73", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = e.call3(http.MethodDelete, manilaPath("site-b", "snapshots/"+snapID), "manila 2.73", nil)
	require.Equal(t, http.StatusAccepted, code)
}

// A site that is down does not answer at all; the other site's Manila
// endpoint shows its services down and its replicas in error.
func TestFacadeStorageSiteDown(t *testing.T) {
	e := newFacadeEnv(t)
	require.NoError(t, e.cloud.SetSiteDown("site-a", true))
	for _, p := range []string{cinderPath("site-a", "volumes/detail"), manilaPath("site-a", "shares/detail"), "/openstack/site-a/volume/"} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.srv.URL+p, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		require.Error(t, err, "%s answered %v while its site is down", p, resp)
	}
	_, body := e.call3(http.MethodGet, cinderPath("site-b", "os-services?binary=cinder-volume&host=a-volume-1@a-block"), "volume 3.70", nil)
	require.Equal(t, "down", jsonList(t, body, "services")[0]["state"], "the other site's endpoint shows a down site's services down")
	_, body = e.call3(http.MethodGet, manilaPath("site-b", "services?binary=manila-share"), "manila 2.73", nil)
	down := map[string]string{}
	for _, s := range jsonList(t, body, "services") {
		down[s["host"].(string)] = s["state"].(string)
	}
	require.Equal(t, map[string]string{"a-share-1@a-files": "down", "b-share-1@b-files": "up", "b-share-2@b-files": "up"}, down)
	_, body = e.call3(http.MethodGet, manilaPath("site-b", "share-replicas/detail"), "manila 2.73", nil)
	for _, r := range jsonList(t, body, "share_replicas") {
		if r["availability_zone"] == "site-a" {
			require.Equal(t, ferry.ReplicaError, r["replica_state"])
		}
	}
	// A forced promote through the surviving site's endpoint works.
	drID := sim.FacadeID("share-replica", "shop-media@b-files")
	code, _ := e.call3(http.MethodPost, manilaPath("site-b", "share-replicas/"+drID+"/action"), "manila 2.73", map[string]any{"promote": map[string]any{}})
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, "b-files", resInfo(t, e.cloud, "shop-media").ActiveBackend)

	code, body = e.call3(http.MethodGet, "/openstack/nowhere/volume/", "", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "itemNotFound")
	code, body = e.call3(http.MethodPost, cinderPath("site-b", "group_snapshots"), "volume 3.70", "not json")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "badRequest")
}

// The facade config helper writes what the adapter reads.
func TestFacadeStorageConfig(t *testing.T) {
	clouds, cfg, err := sim.FacadeOpenStackConfig("http://127.0.0.1:9/", demo.Inventory())
	require.NoError(t, err)
	require.Contains(t, string(clouds), "block_storage_endpoint_override: http://127.0.0.1:9/openstack/site-a/volume/v3/")
	require.Contains(t, string(clouds), "shared_file_system_endpoint_override: http://127.0.0.1:9/openstack/site-b/share/v2/"+sim.FacadeProjectID+"/")
	require.Contains(t, string(cfg), "cluster: b-block@b-block")
	require.Contains(t, string(cfg), "target_of: a-block")
	require.Contains(t, string(cfg), "availability_zone: site-b")
	_, _, err = sim.FacadeOpenStackConfig("http://x", ferry.Inventory{Sites: []ferry.Site{{Name: "dev2"}}})
	require.ErrorContains(t, err, "dev2")
}
