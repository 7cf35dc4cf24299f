package sim

// The Manila (shared-file-system v2) facade: one Manila stretched over the
// simulator's sites, one availability zone per site (named after it), with
// an API endpoint at each site that shows the whole deployment. Its
// microversions are Zed's (2.0 to 2.73): promote has no
// quiesce_wait_time (2.75), and the replicas API needs the experimental
// header below 2.56, as in Manila.
//
// How the simulator shows as Manila:
//
//   - A share backend (one that holds, or replicates with a backend that
//     holds, a share) is a manila-share service per member, host
//     "<member>@<backend>", in its site's zone; up while its site is, and
//     disabled while frozen. The scheduler reports one pool per backend,
//     "<first member>@<backend>#pool", replication_type readable in one
//     replication domain, with snapshots and shares from snapshots.
//   - A share is FacadeID("share", name), of replication_type readable; it
//     shows its active replica's zone and host. Its replicas are
//     FacadeID("share-replica", "<share>@<backend>"), one per backend
//     holding a copy, with the simulator's replica_state (active, in_sync
//     within the group's RPO, out_of_sync, error for a diverged copy or a
//     site that is down).
//   - promote is the simulator's Promote: planned (Demote of the active,
//     then Promote, handing every write over) when the active's site is up
//     and linked to the replica's, forced otherwise, as Manila's promote
//     demotes the old active itself. resync is Resync, create replica
//     EnableReplication (a replica that exists on the zone's backend is
//     answered as created: the simulator keeps one per backend), delete
//     replica DisableReplication. They apply at
//     once: Manila's 202 and the state the adapter then polls for are both
//     there when the answer arrives.
//   - A snapshot is the simulator's SnapshotGroup of the share on its
//     active replica (Manila's replicated snapshot). A share created from a
//     snapshot is a drill clone: TestFailoverStart of the share's replica
//     in the requested zone (the snapshot's share's active one without a
//     zone), at the point that replica holds when asked. Deleting it is
//     TestFailoverStop. The facade creates no other shares and deletes no
//     protected one.

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"
)

var (
	manilaMin          = apiVersion{2, 0}
	manilaMax          = apiVersion{2, 73}
	mvServices         = apiVersion{2, 7}
	mvReplicas         = apiVersion{2, 11}
	mvReplicasGA       = apiVersion{2, 56}
	mvShareQuiesceWait = apiVersion{2, 75}
)

const (
	manilaVersionHeader      = "X-OpenStack-Manila-API-Version"
	manilaExperimentalHeader = "X-OpenStack-Manila-API-Experimental"
	manilaUpdated            = "2015-08-27T11:33:21Z"
	manilaShareType          = "ferry-replicated"
	manilaReplicationType    = "readable"
	manilaReplicationDomain  = "ferry"
)

func (f *storageFacade) serveManila(q *osReq) {
	q.verHeader = func(h http.Header, v apiVersion) {
		h.Set(manilaVersionHeader, v.String())
		h.Set("Vary", manilaVersionHeader)
	}
	switch {
	case len(q.segs) == 0:
		q.json(http.StatusMultipleChoices, map[string]any{"versions": []any{manilaVersion(q.root, "v1.0"), manilaVersion(q.root, "v2.0")}})
		return
	case q.segs[0] != "v2":
		q.fault(http.StatusNotFound, "The facade serves the shared-file-system API v2 only.")
		return
	case len(q.segs) == 1:
		q.json(http.StatusOK, map[string]any{"versions": []any{manilaVersion(q.root, "v2.0")}})
		return
	}
	if !q.negotiate("shared-file-system", manilaVersionHeader, manilaMin, manilaMax) {
		return
	}
	project, rest := q.segs[1], q.segs[2:]
	ctx, m := q.r.Context(), q.r.Method
	switch {
	case m == http.MethodGet && (match(rest, "shares") || match(rest, "shares", "detail") || match(rest, "shares", "*")):
		f.manilaShares(ctx, q, project, rest)
	case m == http.MethodPost && match(rest, "shares"):
		f.manilaCreateShare(ctx, q, project)
	case m == http.MethodDelete && match(rest, "shares", "*"):
		f.manilaDeleteShare(ctx, q, rest[1])
	case len(rest) > 0 && rest[0] == "share-replicas":
		if !q.ver.atLeast(mvReplicas) || (!q.ver.atLeast(mvReplicasGA) && !strings.EqualFold(q.r.Header.Get(manilaExperimentalHeader), "true")) {
			q.notAtVersion()
			return
		}
		f.manilaReplicaRoutes(ctx, q, rest)
	case len(rest) > 0 && rest[0] == "snapshots":
		f.manilaSnapshotRoutes(ctx, q, project, rest)
	case m == http.MethodGet && (match(rest, "services") && q.ver.atLeast(mvServices) || match(rest, "os-services") && !q.ver.atLeast(mvServices)):
		f.manilaServices(ctx, q)
	case m == http.MethodGet && (match(rest, "availability-zones") && q.ver.atLeast(mvServices) || match(rest, "os-availability-zone") && !q.ver.atLeast(mvServices)):
		f.manilaZones(ctx, q)
	case m == http.MethodGet && (match(rest, "scheduler-stats", "pools") || match(rest, "scheduler-stats", "pools", "detail")):
		f.manilaPools(ctx, q, len(rest) == 3)
	default:
		q.fault(http.StatusNotFound, "The resource could not be found.")
	}
}

func manilaVersion(root, id string) map[string]any {
	v := map[string]any{
		"id": id, "status": "CURRENT", "version": manilaMax.String(), "min_version": manilaMin.String(), "updated": manilaUpdated,
		"links": []any{
			map[string]any{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
			map[string]any{"rel": "self", "href": root + strings.TrimSuffix(id, ".0") + "/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.share+json;version=1"}},
	}
	if id == "v1.0" {
		v["status"], v["version"], v["min_version"] = "DEPRECATED", "", ""
	}
	return v
}

// --- the model as Manila sees it (callers hold c.mu and f.mu) -------------

func (f *storageFacade) shares() []*resource {
	var out []*resource
	for _, r := range f.c.resources {
		if r.share {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (f *storageFacade) shareByID(id string) *resource {
	for _, r := range f.shares() {
		if FacadeID("share", r.name) == id {
			return r
		}
	}
	return nil
}

func replicaID(r *resource, be string) string { return FacadeID("share-replica", r.name+"@"+be) }

// shareView is one share as Manila's detail view shows it at q.ver.
type shareView struct {
	id, name, description, status, site, host, snapshotID string
	replicated                                            bool
	created                                               time.Time
}

func (f *storageFacade) protectedShareView(r *resource) shareView {
	b := f.c.backends[r.replicas[r.active].backend]
	v := shareView{id: FacadeID("share", r.name), name: r.name, status: "available", site: b.site, host: poolHost(b),
		replicated: len(r.replicas) > 1, created: r.created}
	if r.status == StatusError {
		v.status = "error"
	}
	return v
}

// cloneShareViews are the drill clones whose simulator clones exist.
func (f *storageFacade) cloneShareViews() []shareView {
	var out []shareView
	for _, cs := range f.cloneShares {
		if _, ok := f.c.clones[cs.cloneID]; !ok {
			continue
		}
		b := f.c.backends[cs.backend]
		out = append(out, shareView{id: cs.id, name: cs.name, description: cs.description, status: "available",
			site: b.site, host: poolHost(b), snapshotID: cs.snapshotID, created: cs.created})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (v shareView) render(q *osReq, project string, detail bool) map[string]any {
	links := []any{
		map[string]any{"rel": "self", "href": q.root + "v2/" + project + "/shares/" + v.id},
		map[string]any{"rel": "bookmark", "href": q.root + project + "/shares/" + v.id},
	}
	if !detail {
		return map[string]any{"id": v.id, "name": nullable(v.name), "links": links}
	}
	typeID := FacadeID("share-type", manilaShareType)
	out := map[string]any{
		"id": v.id, "size": 1, "availability_zone": v.site, "created_at": osStamp(v.created), "status": v.status,
		"name": nullable(v.name), "description": nullable(v.description), "project_id": project,
		"snapshot_id": nullable(v.snapshotID), "share_network_id": nil, "share_proto": "NFS", "metadata": map[string]string{},
		"share_type": manilaShareType, "volume_type": manilaShareType, "links": links, "is_public": false,
		"share_server_id": nil, "host": v.host,
	}
	if !q.ver.atLeast(apiVersion{2, 9}) {
		out["export_location"], out["export_locations"] = nil, []any{}
	}
	if q.ver.atLeast(apiVersion{2, 2}) {
		out["snapshot_support"] = true
	}
	if q.ver.atLeast(apiVersion{2, 5}) {
		out["task_state"] = nil
	}
	if q.ver.atLeast(apiVersion{2, 6}) {
		out["share_type"], out["share_type_name"] = typeID, manilaShareType
	}
	if q.ver.atLeast(apiVersion{2, 10}) {
		out["access_rules_status"] = "active"
	}
	if q.ver.atLeast(mvReplicas) {
		out["replication_type"], out["has_replicas"] = manilaReplicationType, v.replicated
	}
	if q.ver.atLeast(apiVersion{2, 16}) {
		out["user_id"] = "admin"
	}
	if q.ver.atLeast(apiVersion{2, 24}) {
		out["create_share_from_snapshot_support"] = true
	}
	if q.ver.atLeast(apiVersion{2, 27}) {
		out["revert_to_snapshot_support"] = false
	}
	if q.ver.atLeast(apiVersion{2, 31}) {
		out["share_group_id"], out["source_share_group_snapshot_member_id"] = nil, nil
	}
	if q.ver.atLeast(apiVersion{2, 32}) {
		out["mount_snapshot_support"] = false
	}
	if q.ver.atLeast(apiVersion{2, 54}) {
		out["progress"] = "100%"
	}
	if q.ver.atLeast(apiVersion{2, 69}) {
		out["is_soft_deleted"], out["scheduled_to_be_deleted_at"] = false, nil
	}
	return out
}

func (f *storageFacade) allShareViews() []shareView {
	var out []shareView
	for _, r := range f.shares() {
		out = append(out, f.protectedShareView(r))
	}
	return append(out, f.cloneShareViews()...)
}

func (f *storageFacade) manilaShares(ctx context.Context, q *osReq, project string, rest []string) {
	f.read(ctx, q, func(time.Time) (any, int) {
		views := f.allShareViews()
		if len(rest) == 2 && rest[1] != "detail" {
			for _, v := range views {
				if v.id == rest[1] {
					return map[string]any{"share": v.render(q, project, true)}, http.StatusOK
				}
			}
			q.fault(http.StatusNotFound, "Share %s could not be found.", rest[1])
			return nil, 0
		}
		qs := q.r.URL.Query()
		list := []any{}
		for _, v := range views {
			if n := qs.Get("name"); n != "" && n != v.name {
				continue
			}
			if s := qs.Get("status"); s != "" && s != v.status {
				continue
			}
			if s := qs.Get("snapshot_id"); s != "" && s != v.snapshotID {
				continue
			}
			list = append(list, v.render(q, project, len(rest) == 2))
		}
		return map[string]any{"shares": list}, http.StatusOK
	})
}

// --- services, zones, pools -------------------------------------------------

func (f *storageFacade) manilaServices(ctx context.Context, q *osReq) {
	f.read(ctx, q, func(now time.Time) (any, int) {
		var rows []map[string]any
		state := f.siteState
		for _, s := range f.sortedSites() {
			rows = append(rows, map[string]any{"binary": "manila-scheduler", "host": s + "-controller", "zone": s,
				"status": "enabled", "state": state(s), "updated_at": osStamp(now)})
		}
		for _, b := range f.backendsOf(true) {
			for _, m := range b.members {
				status := "enabled"
				if b.frozen {
					status = "disabled"
				}
				rows = append(rows, map[string]any{"binary": "manila-share", "host": memberHost(b, m), "zone": b.site,
					"status": status, "state": state(b.site), "updated_at": osStamp(now)})
			}
		}
		qs := q.r.URL.Query()
		out := []map[string]any{}
		for i, row := range rows {
			row["id"] = i + 1
			keep := true
			for _, k := range []string{"binary", "host", "zone", "state", "status"} {
				if v := qs.Get(k); v != "" && v != row[k] {
					keep = false
				}
			}
			if keep {
				out = append(out, row)
			}
		}
		return map[string]any{"services": out}, http.StatusOK
	})
}

func (f *storageFacade) manilaZones(ctx context.Context, q *osReq) {
	f.read(ctx, q, func(now time.Time) (any, int) {
		out := []any{}
		for _, s := range f.sortedSites() {
			out = append(out, map[string]any{"id": FacadeID("availability-zone", s), "name": s,
				"created_at": osStamp(f.started), "updated_at": osStamp(now)})
		}
		return map[string]any{"availability_zones": out}, http.StatusOK
	})
}

func (f *storageFacade) manilaPools(ctx context.Context, q *osReq, detail bool) {
	f.read(ctx, q, func(now time.Time) (any, int) {
		qs := q.r.URL.Query()
		out := []any{}
		for _, b := range f.backendsOf(true) {
			host := memberHost(b, b.members[0])
			if v := qs.Get("host"); v != "" && v != host {
				continue
			}
			if v := qs.Get("backend"); v != "" && v != b.name {
				continue
			}
			p := map[string]any{"name": poolHost(b), "host": host, "backend": b.name, "pool": cinderPool}
			if detail {
				p["capabilities"] = map[string]any{
					"pool_name": cinderPool, "share_backend_name": b.name, "driver_handles_share_servers": false,
					"replication_type": manilaReplicationType, "replication_domain": manilaReplicationDomain,
					"snapshot_support": true, "create_share_from_snapshot_support": true,
					"revert_to_snapshot_support": false, "mount_snapshot_support": false,
					"total_capacity_gb": 10240, "free_capacity_gb": 10240, "timestamp": osStamp(now),
					"storage_protocol": "NFS_CIFS", "vendor_name": "Ferry facade", "driver_version": "1.0",
				}
			}
			out = append(out, p)
		}
		return map[string]any{"pools": out}, http.StatusOK
	})
}
