package sim

// The Cinder (block-storage v3) facade of one site: versions, volumes,
// cinder-volume services and clusters with their replication bookkeeping,
// and the service actions failover_host, failover, freeze and thaw. Groups,
// group snapshots and snapshots are in facade_cinder_groups.go.
//
// How the simulator shows as Cinder: one Cinder stretched over the sites,
// one availability zone per site (named after it), with an API endpoint at
// each site that shows the whole deployment (facade_storage.go):
//
//   - A cinder-volume service per member of each block backend, host
//     "<member>@<backend>", in its site's zone, up while its site is. A
//     backend of more than one member is an active-active cluster
//     "<backend>@<backend>".
//     replication_status, active_backend_id and frozen are the backend's
//     (a cluster member's active_backend_id is its own, as
//     failover_completed left it); a frozen service is disabled with reason
//     "frozen", as cinder-volume's freeze_host leaves it.
//   - A volume's host is the backend it was created on (its first
//     replica), and stays so, as Cinder's record does: host
//     "<first member>@<backend>#pool", zone that backend's site; a replica
//     on its replication target is behind it, not a volume of its own.
//     Every site's endpoint lists it, so Nova at the DR site finds the
//     volume it boots from. replication_status is disabled
//     for a volume with one replica, enabled while it is active on that
//     backend, failed-over while another replica is active; a volume a
//     host failover left behind is in error (not-capable).
//   - failover_host and failover are the simulator's FailoverHost, freeze
//     and thaw its Freeze and Thaw. They apply at once; Cinder answers 202
//     and the adapter reads the outcome, which it finds already there. A
//     failover cinder-volume would refuse (an unknown backend_id, a
//     failover from one target to another) is answered 202 and changes
//     nothing, as Cinder only logs the driver's refusal; one whose target
//     site is down drops the connection, as every facade request does
//     whose work needs a site that is down.

import (
	"context"
	"net/http"
	"sort"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// Cinder's microversions: Zed's range, and the ones the facade's answers
// depend on.
var (
	cinderMin         = apiVersion{3, 0}
	cinderMax         = apiVersion{3, 70}
	cvCluster         = apiVersion{3, 7}
	cvGroupVolume     = apiVersion{3, 13}
	cvGroupSnapshots  = apiVersion{3, 14}
	cvGroupVolumeList = apiVersion{3, 25}
	cvReplCluster     = apiVersion{3, 26}
	cvGroupRepl       = apiVersion{3, 38}
	cvSharedTargets   = apiVersion{3, 48}
	cvBackendState    = apiVersion{3, 49}
	cvProjectID       = apiVersion{3, 58}
	cvClusterName     = apiVersion{3, 61}
	cvTypeID          = apiVersion{3, 63}
	cvUseQuota        = apiVersion{3, 65}
	cvGroupTypes      = apiVersion{3, 11}
)

// cinderUpdated is the "updated" date of Zed's v3 versions entry.
const cinderUpdated = "2022-08-31T00:00:00Z"

// Facade names of Cinder's types.
const (
	cinderReplicatedType = "ferry-replicated"
	cinderGroupType      = "ferry-group-replication"
	cinderPool           = "pool"
)

func (f *storageFacade) serveCinder(q *osReq) {
	q.verHeader = func(h http.Header, v apiVersion) {
		h.Set("OpenStack-API-Version", "volume "+v.String())
		h.Set("Vary", "OpenStack-API-Version")
	}
	switch {
	case len(q.segs) == 0:
		if q.r.Method != http.MethodGet {
			q.fault(http.StatusMethodNotAllowed, "The method is not allowed.")
			return
		}
		q.json(http.StatusMultipleChoices, map[string]any{"versions": []any{cinderVersion(q.root)}})
		return
	case q.segs[0] != "v3":
		q.fault(http.StatusNotFound, "The facade serves the block-storage API v3 only.")
		return
	case len(q.segs) == 1:
		q.json(http.StatusOK, map[string]any{"versions": []any{cinderVersion(q.root)}})
		return
	}
	if !q.negotiate("volume", "", cinderMin, cinderMax) {
		return
	}
	project, rest := q.segs[1], q.segs[2:]
	ctx := q.r.Context()
	m := q.r.Method
	switch {
	case m == http.MethodGet && match(rest, "volumes"):
		f.cinderVolumes(ctx, q, project, false, "")
	case m == http.MethodGet && match(rest, "volumes", "detail"):
		f.cinderVolumes(ctx, q, project, true, "")
	case m == http.MethodGet && match(rest, "volumes", "*"):
		f.cinderVolumes(ctx, q, project, true, rest[1])
	case m == http.MethodGet && match(rest, "os-services"):
		f.cinderServices(ctx, q)
	case m == http.MethodPut && match(rest, "os-services", "*"):
		f.cinderServiceAction(ctx, q, rest[1])
	case m == http.MethodGet && (match(rest, "clusters") || match(rest, "clusters", "detail") || match(rest, "clusters", "*")):
		if !q.ver.atLeast(cvCluster) {
			q.notAtVersion()
			return
		}
		f.cinderClusters(ctx, q, rest)
	case m == http.MethodGet && (match(rest, "types") || match(rest, "types", "*")):
		f.cinderTypes(q, rest)
	case m == http.MethodGet && (match(rest, "group_types") || match(rest, "group_types", "*")):
		if !q.ver.atLeast(cvGroupTypes) {
			q.notAtVersion()
			return
		}
		f.cinderGroupTypes(q, rest)
	case len(rest) > 0 && rest[0] == "groups":
		if !q.ver.atLeast(cvGroupVolume) {
			q.notAtVersion()
			return
		}
		f.cinderGroupRoutes(ctx, q, project, rest)
	case len(rest) > 0 && rest[0] == "group_snapshots":
		if !q.ver.atLeast(cvGroupSnapshots) {
			q.notAtVersion()
			return
		}
		f.cinderGroupSnapshotRoutes(ctx, q, project, rest)
	case m == http.MethodGet && (match(rest, "snapshots") || match(rest, "snapshots", "detail") || match(rest, "snapshots", "*")):
		f.cinderSnapshots(ctx, q, project, rest)
	default:
		q.fault(http.StatusNotFound, "The resource could not be found.")
	}
}

// match says whether segs are pattern's segments ("*" matches one).
func match(segs []string, pattern ...string) bool {
	if len(segs) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != "*" && p != segs[i] {
			return false
		}
	}
	return true
}

func cinderVersion(root string) map[string]any {
	return map[string]any{
		"id": "v3.0", "status": "CURRENT", "version": cinderMax.String(), "min_version": cinderMin.String(),
		"updated": cinderUpdated,
		"links": []any{
			map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
			map[string]any{"rel": "self", "href": root + "v3/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
	}
}

// read runs fn on the model at the current time, under the simulator's
// lock and its fault injection (op "facade.read", targets the site).
func (f *storageFacade) read(ctx context.Context, q *osReq, fn func(now time.Time) (any, int)) {
	var code int
	v, err := query(ctx, f.c, call{op: "facade.read", targets: []string{q.site}}, func(now time.Time) (any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var v any
		v, code = fn(now)
		return v, nil
	})
	if err != nil {
		q.simFault(err)
		return
	}
	if code == 0 {
		return // fn answered itself (a fault)
	}
	q.json(code, v)
}

// --- the model as Cinder sees it (callers hold c.mu and f.mu) -------------

// isShareBackend says whether a backend is Manila's: it, or a backend it
// replicates with, holds a share replica. Every other backend is Cinder's.
func (f *storageFacade) isShareBackend(be string) bool {
	b, ok := f.c.backends[be]
	if !ok {
		return false
	}
	related := map[string]bool{be: true}
	for _, t := range b.targets {
		related[t.Backend] = true
	}
	for _, o := range f.c.backends {
		for _, t := range o.targets {
			if t.Backend == be {
				related[o.name] = true
			}
		}
	}
	for _, r := range f.c.resources {
		if !r.share {
			continue
		}
		for _, rep := range r.replicas {
			if related[rep.backend] {
				return true
			}
		}
	}
	return false
}

// backendsOf are the Cinder (share=false) or Manila backends, sorted by
// name.
func (f *storageFacade) backendsOf(share bool) []*backend {
	var out []*backend
	for _, b := range f.c.backends {
		if f.isShareBackend(b.name) == share {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func memberHost(b *backend, m *member) string { return m.name + "@" + b.name }

func clustered(b *backend) bool { return len(b.members) > 1 }

func clusterName(b *backend) string { return b.name + "@" + b.name }

// poolHost is the host of what lives on a backend: host@backend#pool.
func poolHost(b *backend) string { return memberHost(b, b.members[0]) + "#" + cinderPool }

// homeOf is the backend a volume's Cinder record names: where it was
// created, remembered even after its replica there is gone.
func (f *storageFacade) homeOf(r *resource) *backend {
	h, ok := f.home[r.name]
	if !ok {
		h = r.replicas[0].backend
		f.home[r.name] = h
	}
	return f.c.backends[h]
}

// volumes are Cinder's volumes (the simulator's resources that are not
// shares), sorted by name.
func (f *storageFacade) volumes() []*resource {
	var out []*resource
	for _, r := range f.c.resources {
		if !r.share && f.homeOf(r) != nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// volumeReplication is a volume's replication_status.
func volumeReplication(r *resource, home *backend) string {
	switch {
	case r.status == StatusError:
		return ferry.ReplicationNotCapable
	case len(r.replicas) < 2:
		return ferry.ReplicationDisabled
	case r.replicas[r.active].backend == home.name:
		return ferry.ReplicationEnabled
	}
	return ferry.ReplicationFailedOver
}

// volumeGroupKey is the facade's Cinder group of a volume: its Ferry
// protection group on its home backend ("" for a volume of no group).
func volumeGroupKey(r *resource, home *backend) string {
	if r.group == "" {
		return ""
	}
	return r.group + "@" + home.name
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// volumeView is one volume as Cinder's detail view shows it at q.ver.
type volumeView struct {
	id, name, status, replStatus, site, host, groupID string
	snapshotID, sourceVolID, typeName, clusterName    string
	created                                           time.Time
}

func (v volumeView) render(q *osReq, project string, now time.Time, detail bool) map[string]any {
	links := []any{
		map[string]any{"rel": "self", "href": q.root + "v3/" + project + "/volumes/" + v.id},
		map[string]any{"rel": "bookmark", "href": q.root + project + "/volumes/" + v.id},
	}
	if !detail {
		return map[string]any{"id": v.id, "name": nullable(v.name), "links": links}
	}
	out := map[string]any{
		"id": v.id, "name": nullable(v.name), "status": v.status, "size": 1,
		"availability_zone": v.site, "created_at": osStamp(v.created), "updated_at": osStamp(now),
		"description": nil, "volume_type": v.typeName, "snapshot_id": nullable(v.snapshotID),
		"source_volid": nullable(v.sourceVolID), "metadata": map[string]string{}, "links": links,
		"user_id": "admin", "bootable": "false", "encrypted": false, "replication_status": v.replStatus,
		"consistencygroup_id": nil, "multiattach": false, "attachments": []any{}, "migration_status": nil,
		"os-vol-host-attr:host": v.host, "os-vol-tenant-attr:tenant_id": project,
		"os-vol-mig-status-attr:migstat": nil, "os-vol-mig-status-attr:name_id": nil,
	}
	if q.ver.atLeast(cvGroupVolume) {
		out["group_id"] = nullable(v.groupID)
	}
	if q.ver.atLeast(apiVersion{3, 21}) {
		out["provider_id"] = nil
	}
	if q.ver.atLeast(cvSharedTargets) {
		out["shared_targets"] = false
		out["service_uuid"] = FacadeID("service", v.host)
	}
	if q.ver.atLeast(cvClusterName) {
		out["cluster_name"] = nullable(v.clusterName)
	}
	if q.ver.atLeast(cvTypeID) {
		out["volume_type_id"] = FacadeID("volume-type", v.typeName)
	}
	if q.ver.atLeast(cvUseQuota) {
		out["consumes_quota"] = true
	}
	return out
}

// protectedVolumeView is a volume of the simulator as its Cinder shows it.
func (f *storageFacade) protectedVolumeView(r *resource) volumeView {
	home := f.homeOf(r)
	v := volumeView{
		id: FacadeID("volume", r.name), name: r.name, status: "available", replStatus: volumeReplication(r, home),
		site: home.site, host: poolHost(home), created: r.created, typeName: cinderReplicatedType,
	}
	if r.status == StatusError {
		v.status = "error"
	}
	if key := volumeGroupKey(r, home); key != "" {
		v.groupID = FacadeID("group", key)
	}
	if clustered(home) {
		v.clusterName = clusterName(home)
	}
	return v
}

// volumeViews are every volume of Cinder: the simulator's volumes and the
// drill copies create-from-src made.
func (f *storageFacade) volumeViews() []volumeView {
	var out []volumeView
	for _, r := range f.volumes() {
		out = append(out, f.protectedVolumeView(r))
	}
	for _, g := range f.sortedCloneGroups() {
		out = append(out, f.cloneVolumeViews(g)...)
	}
	return out
}

func (f *storageFacade) cinderVolumes(ctx context.Context, q *osReq, project string, detail bool, id string) {
	f.read(ctx, q, func(now time.Time) (any, int) {
		views := f.volumeViews()
		if id != "" {
			for _, v := range views {
				if v.id == id {
					return map[string]any{"volume": v.render(q, project, now, true)}, http.StatusOK
				}
			}
			q.fault(http.StatusNotFound, "Volume %s could not be found.", id)
			return nil, 0
		}
		qs := q.r.URL.Query()
		list := []any{}
		for _, v := range views {
			if n := qs.Get("name"); n != "" && n != v.name {
				continue
			}
			if g := qs.Get("group_id"); g != "" && g != v.groupID {
				continue
			}
			if s := qs.Get("status"); s != "" && s != v.status {
				continue
			}
			list = append(list, v.render(q, project, now, detail))
		}
		return map[string]any{"volumes": list}, http.StatusOK
	})
}

// --- services and clusters -------------------------------------------------

// siteState is "up" or "down", as Cinder and Manila show a service.
func (f *storageFacade) siteState(site string) string {
	if f.c.siteUp(site) {
		return "up"
	}
	return "down"
}

func (f *storageFacade) sortedSites() []string {
	out := make([]string, 0, len(f.c.sites))
	for s := range f.c.sites {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// serviceRows are Cinder's services: a scheduler per site and a
// cinder-volume per member of each block backend.
func (f *storageFacade) serviceRows(q *osReq, now time.Time) []map[string]any {
	var rows []map[string]any
	for _, s := range f.sortedSites() {
		row := map[string]any{
			"binary": "cinder-scheduler", "host": s + "-controller", "zone": s,
			"status": "enabled", "state": f.siteState(s), "updated_at": osStamp(now), "disabled_reason": nil,
		}
		if q.ver.atLeast(cvCluster) {
			row["cluster"] = nil
		}
		rows = append(rows, row)
	}
	for _, b := range f.backendsOf(false) {
		for _, m := range b.members {
			row := map[string]any{
				"binary": "cinder-volume", "host": memberHost(b, m), "zone": b.site,
				"status": "enabled", "state": f.siteState(b.site), "updated_at": osStamp(now), "disabled_reason": nil,
				"replication_status": b.replStatus, "active_backend_id": nullable(b.activeID), "frozen": b.frozen,
			}
			if clustered(b) {
				row["active_backend_id"] = nullable(m.activeID)
			}
			if b.frozen {
				row["status"], row["disabled_reason"] = "disabled", "frozen"
			}
			if q.ver.atLeast(cvCluster) {
				row["cluster"] = nil
				if clustered(b) {
					row["cluster"] = clusterName(b)
				}
			}
			if q.ver.atLeast(cvBackendState) {
				row["backend_state"] = f.siteState(b.site)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func (f *storageFacade) cinderServices(ctx context.Context, q *osReq) {
	f.read(ctx, q, func(now time.Time) (any, int) {
		qs := q.r.URL.Query()
		out := []map[string]any{}
		for _, row := range f.serviceRows(q, now) {
			if h := qs.Get("host"); h != "" && h != row["host"] {
				continue
			}
			if b := qs.Get("binary"); b != "" && b != row["binary"] {
				continue
			}
			out = append(out, row)
		}
		return map[string]any{"services": out}, http.StatusOK
	})
}

func (f *storageFacade) cinderClusters(ctx context.Context, q *osReq, rest []string) {
	f.read(ctx, q, func(now time.Time) (any, int) {
		qs := q.r.URL.Query()
		var list []map[string]any
		for _, b := range f.backendsOf(false) {
			if !clustered(b) {
				continue
			}
			status, reason := "enabled", any(nil)
			if b.frozen {
				status, reason = "disabled", "frozen"
			}
			state, down := f.siteState(b.site), 0
			if state == "down" {
				down = len(b.members)
			}
			c := map[string]any{"name": clusterName(b), "binary": "cinder-volume", "state": state, "status": status}
			if len(rest) > 1 {
				c["num_hosts"], c["num_down_hosts"] = len(b.members), down
				c["last_heartbeat"], c["created_at"], c["updated_at"] = osStamp(now), osStamp(f.started), osStamp(now)
				c["disabled_reason"] = reason
				if q.ver.atLeast(cvReplCluster) {
					c["replication_status"], c["frozen"], c["active_backend_id"] = b.replStatus, b.frozen, nullable(b.activeID)
				}
			}
			list = append(list, c)
		}
		if len(rest) == 2 && rest[1] != "detail" {
			for _, c := range list {
				if c["name"] == rest[1] {
					return map[string]any{"cluster": c}, http.StatusOK
				}
			}
			q.fault(http.StatusNotFound, "Cluster %s could not be found.", rest[1])
			return nil, 0
		}
		out := []map[string]any{}
		for _, c := range list {
			if n := qs.Get("name"); n != "" && n != c["name"] {
				continue
			}
			if b := qs.Get("binary"); b != "" && b != c["binary"] {
				continue
			}
			out = append(out, c)
		}
		return map[string]any{"clusters": out}, http.StatusOK
	})
}

// cinderTypes serves the one volume type the facade's volumes have.
func (f *storageFacade) cinderTypes(q *osReq, rest []string) {
	t := map[string]any{
		"id": FacadeID("volume-type", cinderReplicatedType), "name": cinderReplicatedType, "description": "facade: replicated volumes",
		"is_public": true, "os-volume-type-access:is_public": true, "qos_specs_id": nil,
		"extra_specs": map[string]string{"replication_enabled": "<is> True"},
	}
	if len(rest) == 2 {
		if rest[1] != t["id"] && rest[1] != cinderReplicatedType {
			q.fault(http.StatusNotFound, "Volume type %s could not be found.", rest[1])
			return
		}
		q.json(http.StatusOK, map[string]any{"volume_type": t})
		return
	}
	q.json(http.StatusOK, map[string]any{"volume_types": []any{t}})
}

// cinderGroupTypes serves the one group type of the facade's groups: a
// consistent, replicated group.
func (f *storageFacade) cinderGroupTypes(q *osReq, rest []string) {
	t := map[string]any{
		"id": FacadeID("group-type", cinderGroupType), "name": cinderGroupType, "description": "facade: replicated consistency groups",
		"is_public": true,
		"group_specs": map[string]string{
			"consistent_group_snapshot_enabled":    "<is> True",
			"consistent_group_replication_enabled": "<is> True",
		},
	}
	if len(rest) == 2 {
		if rest[1] != t["id"] && rest[1] != cinderGroupType {
			q.fault(http.StatusNotFound, "Group type %s could not be found.", rest[1])
			return
		}
		q.json(http.StatusOK, map[string]any{"group_type": t})
		return
	}
	q.json(http.StatusOK, map[string]any{"group_types": []any{t}})
}

// --- service actions -------------------------------------------------------

// serviceTarget resolves the host or cluster of a service action to a
// block backend, the way Cinder's get_cluster_host reads the body:
// the cluster counts only from clusterFrom on (never when nil).
func (f *storageFacade) serviceTarget(q *osReq, body map[string]any, clusterFrom *apiVersion) (*backend, bool) {
	host, _ := body["host"].(string)
	cluster := ""
	if clusterFrom != nil && q.ver.atLeast(*clusterFrom) {
		cluster, _ = body["cluster"].(string)
		if (host == "") == (cluster == "") {
			q.fault(http.StatusBadRequest, "Invalid input received: One and only one of cluster and host must be set.")
			return nil, false
		}
	} else if host == "" {
		q.fault(http.StatusBadRequest, "Invalid input received: Host field is missing.")
		return nil, false
	}
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	for _, b := range f.backendsOf(false) {
		if cluster != "" && clustered(b) && clusterName(b) == cluster {
			return b, true
		}
		for _, m := range b.members {
			if host != "" && (memberHost(b, m) == host || (clustered(b) && clusterName(b) == host)) {
				return b, true
			}
		}
	}
	what := "host " + host
	if cluster != "" {
		what = "cluster " + cluster
	}
	q.fault(http.StatusBadRequest, "Invalid input received: Service %s could not be found.", what)
	return nil, false
}

func (f *storageFacade) cinderServiceAction(ctx context.Context, q *osReq, action string) {
	var body map[string]any
	if !q.body(&body) {
		return
	}
	switch action {
	case "freeze", "thaw":
		b, ok := f.serviceTarget(q, body, &cvReplCluster)
		if !ok {
			return
		}
		f.c.mu.Lock()
		frozen := b.frozen
		f.c.mu.Unlock()
		if frozen == (action == "freeze") {
			q.fault(http.StatusBadRequest, "Invalid input received: No service could be changed: %s is %s.", b.name,
				map[bool]string{true: "already frozen", false: "not frozen"}[frozen])
			return
		}
		var err error
		if action == "freeze" {
			err = f.c.Freeze(ctx, facadeKey("cinder", "freeze"), b.name)
		} else {
			err = f.c.Thaw(ctx, facadeKey("cinder", "thaw"), b.name)
		}
		if err != nil {
			q.simFault(err)
			return
		}
		q.empty(http.StatusOK)
	case "failover_host", "failover":
		var from *apiVersion
		if action == "failover" {
			if !q.ver.atLeast(cvReplCluster) {
				q.fault(http.StatusBadRequest, "Invalid input received: Unknown action")
				return
			}
			from = &cvReplCluster
		}
		b, ok := f.serviceTarget(q, body, from)
		if !ok {
			return
		}
		f.c.mu.Lock()
		status := b.replStatus
		f.c.mu.Unlock()
		if status != ferry.ReplicationEnabled && status != ferry.ReplicationFailedOver {
			q.fault(http.StatusBadRequest, "Invalid input received: No service could be changed: %s has replication_status %s, not enabled or failed-over.", b.name, status)
			return
		}
		target, _ := body["backend_id"].(string)
		// Cinder accepts the failover and leaves a driver's refusal to
		// cinder-volume's log: the backend stays as it was. A target that
		// cannot be reached is the facades' dropped connection.
		if _, err := f.c.FailoverHost(ctx, facadeKey("cinder", action), b.name, target); err != nil && !drivers.IsPermanent(err) {
			q.simFault(err)
			return
		}
		q.empty(http.StatusAccepted)
	default:
		q.fault(http.StatusBadRequest, "Invalid input received: Unknown action")
	}
}
