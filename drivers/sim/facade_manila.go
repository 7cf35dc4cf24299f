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

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
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

// shareSnapRec is a snapshot taken through the facade.
type shareSnapRec struct {
	id, name, description, share string
	created                      time.Time
	snap                         drivers.Snapshot
}

// cloneShareRec is a share created from a snapshot: a drill clone.
type cloneShareRec struct {
	id, cloneID, name, description string
	share, snapshotID, backend     string
	created                        time.Time
}

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

// --- replicas --------------------------------------------------------------

func (f *storageFacade) replicaView(q *osReq, r *resource, i int, now time.Time, detail bool) map[string]any {
	rep := r.replicas[i]
	b := f.c.backends[rep.backend]
	st := f.c.replicaStatus(r, i, now)
	status := "available"
	if r.status == StatusError {
		status = "error"
	}
	out := map[string]any{"id": replicaID(r, rep.backend), "share_id": FacadeID("share", r.name), "status": status, "replica_state": st.State}
	if !detail {
		return out
	}
	out["availability_zone"], out["created_at"], out["updated_at"] = b.site, osStamp(r.created), osStamp(now)
	out["share_network_id"], out["share_server_id"], out["host"] = nil, nil, poolHost(b)
	if q.ver.atLeast(apiVersion{2, 30}) {
		out["cast_rules_to_readonly"] = st.State != ferry.ReplicaActive
	}
	return out
}

// findReplica finds a replica by id: its share and index.
func (f *storageFacade) findReplica(id string) (*resource, int) {
	for _, r := range f.shares() {
		for i, rep := range r.replicas {
			if replicaID(r, rep.backend) == id {
				return r, i
			}
		}
	}
	return nil, -1
}

func (f *storageFacade) manilaReplicaRoutes(ctx context.Context, q *osReq, rest []string) {
	m := q.r.Method
	switch {
	case m == http.MethodGet && (match(rest, "share-replicas") || match(rest, "share-replicas", "detail")):
		f.read(ctx, q, func(now time.Time) (any, int) {
			shareID := q.r.URL.Query().Get("share_id")
			list := []any{}
			found := shareID == ""
			for _, r := range f.shares() {
				if shareID != "" && FacadeID("share", r.name) != shareID {
					continue
				}
				found = true
				for i := range r.replicas {
					list = append(list, f.replicaView(q, r, i, now, len(rest) == 2))
				}
			}
			if !found {
				q.fault(http.StatusNotFound, "Share with share ID %s not found.", shareID)
				return nil, 0
			}
			return map[string]any{"share_replicas": list}, http.StatusOK
		})
	case m == http.MethodGet && match(rest, "share-replicas", "*"):
		f.read(ctx, q, func(now time.Time) (any, int) {
			r, i := f.findReplica(rest[1])
			if r == nil {
				q.fault(http.StatusNotFound, "Replica %s not found.", rest[1])
				return nil, 0
			}
			return map[string]any{"share_replica": f.replicaView(q, r, i, now, true)}, http.StatusOK
		})
	case m == http.MethodPost && match(rest, "share-replicas"):
		f.manilaCreateReplica(ctx, q)
	case m == http.MethodDelete && match(rest, "share-replicas", "*"):
		f.manilaDeleteReplica(ctx, q, rest[1])
	case m == http.MethodPost && match(rest, "share-replicas", "*", "action"):
		f.manilaReplicaAction(ctx, q, rest[1])
	default:
		q.fault(http.StatusNotFound, "The resource could not be found.")
	}
}

// lockedRead runs fn under the simulator's lock with the model brought up
// to now; fn answers a fault itself and returns false to stop.
func (f *storageFacade) lockedRead(ctx context.Context, q *osReq, fn func(now time.Time) bool) bool {
	ok := false
	_, err := query(ctx, f.c, call{op: "facade.read", targets: []string{q.site}}, func(now time.Time) (struct{}, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		ok = fn(now)
		return struct{}{}, nil
	})
	if err != nil {
		q.simFault(err)
		return false
	}
	return ok
}

func (f *storageFacade) manilaCreateReplica(ctx context.Context, q *osReq) {
	var body struct {
		Rep *struct {
			ShareID          string `json:"share_id"`
			AvailabilityZone string `json:"availability_zone"`
			ShareNetworkID   string `json:"share_network_id"`
		} `json:"share_replica"`
	}
	if !q.body(&body) {
		return
	}
	if body.Rep == nil {
		q.fault(http.StatusUnprocessableEntity, "Body does not contain 'share_replica' information.")
		return
	}
	if body.Rep.ShareID == "" {
		q.fault(http.StatusBadRequest, "Must provide Share ID to add replica.")
		return
	}
	if body.Rep.ShareNetworkID != "" && !q.ver.atLeast(apiVersion{2, 72}) {
		q.fault(http.StatusBadRequest, "'share_network_id' option is not supported by this microversion. Use 2.72 or greater microversion to be able to use 'share_network_id'.")
		return
	}
	var share, active, target string
	if !f.lockedRead(ctx, q, func(time.Time) bool {
		r := f.shareByID(body.Rep.ShareID)
		if r == nil {
			q.fault(http.StatusNotFound, "No share exists with ID %s.", body.Rep.ShareID)
			return false
		}
		share = r.name
		act := f.c.backends[r.replicas[r.active].backend]
		active = act.name
		az := body.Rep.AvailabilityZone
		if _, ok := f.c.sites[az]; az != "" && !ok {
			q.fault(http.StatusBadRequest, "Availability zone %s could not be found.", az)
			return false
		}
		for _, t := range act.targets {
			if tb := f.c.backends[t.Backend]; az == "" || tb.site == az {
				if az != "" || replicaIndex(r, t.Backend) < 0 {
					target = t.Backend
					break
				}
			}
		}
		if target == "" {
			q.fault(http.StatusBadRequest, "No valid host was found: backend %s of share %s replicates to no backend in zone %q.", act.name, r.name, az)
			return false
		}
		return true
	}) {
		return
	}
	if err := f.c.EnableReplication(ctx, facadeKey("manila", "create_replica"), active, target, []string{share}); err != nil {
		q.simFault(err)
		return
	}
	f.lockedRead(ctx, q, func(now time.Time) bool {
		r := f.c.resources[share]
		q.json(http.StatusAccepted, map[string]any{"share_replica": f.replicaView(q, r, replicaIndex(r, target), now, true)})
		return true
	})
}

func (f *storageFacade) manilaDeleteReplica(ctx context.Context, q *osReq, id string) {
	var share, be string
	if !f.lockedRead(ctx, q, func(time.Time) bool {
		r, i := f.findReplica(id)
		if r == nil {
			q.fault(http.StatusNotFound, "No replica exists with ID %s.", id)
			return false
		}
		if i == r.active {
			q.fault(http.StatusBadRequest, "Cannot delete last active replica.")
			return false
		}
		share, be = r.name, r.replicas[i].backend
		return true
	}) {
		return
	}
	if err := f.c.DisableReplication(ctx, facadeKey("manila", "delete_replica"), be, []string{share}); err != nil {
		q.simFault(err)
		return
	}
	q.empty(http.StatusAccepted)
}

func (f *storageFacade) manilaReplicaAction(ctx context.Context, q *osReq, id string) {
	var body map[string]map[string]any
	if !q.body(&body) {
		return
	}
	if len(body) != 1 {
		q.fault(http.StatusBadRequest, "Exactly one action is expected, got %d.", len(body))
		return
	}
	var action string
	var args map[string]any
	for action, args = range body {
	}
	switch action {
	case "promote", "resync":
	default:
		q.fault(http.StatusBadRequest, "There is no such action: %s", action)
		return
	}
	if _, ok := args["quiesce_wait_time"]; ok && action == "promote" && !q.ver.atLeast(mvShareQuiesceWait) {
		q.fault(http.StatusBadRequest, "quiesce_wait_time needs API microversion %s; this Manila supports up to %s and would promote without waiting.", mvShareQuiesceWait, manilaMax)
		return
	}
	var (
		share, be, old string
		isActive       bool
		planned        bool
	)
	if !f.lockedRead(ctx, q, func(time.Time) bool {
		r, i := f.findReplica(id)
		if r == nil {
			q.fault(http.StatusNotFound, "No replica exists with ID %s.", id)
			return false
		}
		share, be = r.name, r.replicas[i].backend
		isActive = i == r.active && !r.demoted
		o := r.replicas[r.active]
		old = o.backend
		planned = f.c.linkUp(f.c.replicaSite(o), f.c.replicaSite(r.replicas[i]))
		return true
	}) {
		return
	}
	if isActive {
		q.empty(http.StatusOK) // Manila: nothing to do for the active replica
		return
	}
	switch action {
	case "resync":
		if _, err := f.c.Resync(ctx, facadeKey("manila", "resync"), be, []string{share}); err != nil {
			q.simFault(err)
			return
		}
		q.empty(http.StatusAccepted)
		return
	}
	var err error
	if planned && old != be {
		if err = f.c.Demote(ctx, facadeKey("manila", "promote-demote"), old, []string{share}); err == nil {
			if _, err = f.c.Promote(ctx, facadeKey("manila", "promote"), be, []string{share}, false); err != nil {
				_, _ = f.c.Promote(context.Background(), facadeKey("manila", "promote-undo"), old, []string{share}, false)
			}
		}
	} else {
		_, err = f.c.Promote(ctx, facadeKey("manila", "promote"), be, []string{share}, old != be)
	}
	if err != nil {
		q.simFault(err)
		return
	}
	f.lockedRead(ctx, q, func(now time.Time) bool {
		r := f.c.resources[share]
		q.json(http.StatusAccepted, map[string]any{"share_replica": f.replicaView(q, r, replicaIndex(r, be), now, true)})
		return true
	})
}

// --- snapshots and drill clones -------------------------------------------

func (f *storageFacade) snapView(q *osReq, project string, s *shareSnapRec, detail bool) map[string]any {
	out := map[string]any{"id": s.id, "name": nullable(s.name), "links": []any{
		map[string]any{"rel": "self", "href": q.root + "v2/" + project + "/snapshots/" + s.id},
		map[string]any{"rel": "bookmark", "href": q.root + project + "/snapshots/" + s.id},
	}}
	if !detail {
		return out
	}
	out["share_id"], out["share_size"], out["created_at"], out["status"] = FacadeID("share", s.share), 1, osStamp(s.created), "available"
	out["description"], out["size"], out["share_proto"] = nullable(s.description), 1, "NFS"
	if q.ver.atLeast(apiVersion{2, 17}) {
		out["user_id"], out["project_id"] = "admin", project
	}
	if q.ver.atLeast(apiVersion{2, 73}) {
		out["metadata"] = map[string]string{}
	}
	return out
}

func (f *storageFacade) sortedSnaps() []*shareSnapRec {
	out := make([]*shareSnapRec, 0, len(f.shareSnaps))
	for _, s := range f.shareSnaps {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

func (f *storageFacade) manilaSnapshotRoutes(ctx context.Context, q *osReq, project string, rest []string) {
	m := q.r.Method
	switch {
	case m == http.MethodGet && (match(rest, "snapshots") || match(rest, "snapshots", "detail")):
		f.read(ctx, q, func(time.Time) (any, int) {
			qs := q.r.URL.Query()
			list := []any{}
			for _, s := range f.sortedSnaps() {
				if v := qs.Get("share_id"); v != "" && v != FacadeID("share", s.share) {
					continue
				}
				if v := qs.Get("name"); v != "" && v != s.name {
					continue
				}
				list = append(list, f.snapView(q, project, s, len(rest) == 2))
			}
			return map[string]any{"snapshots": list}, http.StatusOK
		})
	case m == http.MethodGet && match(rest, "snapshots", "*"):
		f.read(ctx, q, func(time.Time) (any, int) {
			s := f.shareSnaps[rest[1]]
			if s == nil {
				q.fault(http.StatusNotFound, "Snapshot %s could not be found.", rest[1])
				return nil, 0
			}
			return map[string]any{"snapshot": f.snapView(q, project, s, true)}, http.StatusOK
		})
	case m == http.MethodDelete && match(rest, "snapshots", "*"):
		f.mu.Lock()
		_, ok := f.shareSnaps[rest[1]]
		delete(f.shareSnaps, rest[1])
		f.mu.Unlock()
		if !ok {
			q.fault(http.StatusNotFound, "Snapshot %s could not be found.", rest[1])
			return
		}
		q.empty(http.StatusAccepted)
	case m == http.MethodPost && match(rest, "snapshots"):
		f.manilaCreateSnapshot(ctx, q, project)
	default:
		q.fault(http.StatusNotFound, "The resource could not be found.")
	}
}

func (f *storageFacade) manilaCreateSnapshot(ctx context.Context, q *osReq, project string) {
	var body struct {
		Snap *struct {
			ShareID     string `json:"share_id"`
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"snapshot"`
	}
	if !q.body(&body) {
		return
	}
	if body.Snap == nil || body.Snap.ShareID == "" {
		q.fault(http.StatusUnprocessableEntity, "Snapshot create needs a snapshot with a share_id.")
		return
	}
	var share, active string
	if !f.lockedRead(ctx, q, func(time.Time) bool {
		r := f.shareByID(body.Snap.ShareID)
		if r == nil {
			q.fault(http.StatusNotFound, "Share %s could not be found.", body.Snap.ShareID)
			return false
		}
		share, active = r.name, r.replicas[r.active].backend
		return true
	}) {
		return
	}
	snap, err := f.c.SnapshotGroup(ctx, facadeKey("manila", "snapshot"), active, []string{share})
	if err != nil {
		q.simFault(err)
		return
	}
	s := &shareSnapRec{id: FacadeID("share-snapshot", snap.ID), name: body.Snap.Name, description: body.Snap.Description,
		share: share, created: snap.Taken, snap: snap}
	f.mu.Lock()
	f.shareSnaps[s.id] = s
	f.mu.Unlock()
	q.json(http.StatusAccepted, map[string]any{"snapshot": f.snapView(q, project, s, true)})
}

// manilaCreateShare creates a share from a snapshot: a drill clone.
func (f *storageFacade) manilaCreateShare(ctx context.Context, q *osReq, project string) {
	var body struct {
		Share *struct {
			Name             string `json:"name"`
			Description      string `json:"description"`
			SnapshotID       string `json:"snapshot_id"`
			AvailabilityZone string `json:"availability_zone"`
		} `json:"share"`
	}
	if !q.body(&body) {
		return
	}
	if body.Share == nil {
		q.fault(http.StatusUnprocessableEntity, "Share entity not found in request body.")
		return
	}
	sp := body.Share
	if sp.SnapshotID == "" {
		q.fault(http.StatusBadRequest, "The facade creates shares only from snapshots (a drill's clones): snapshot_id is required.")
		return
	}
	var share, be string
	if !f.lockedRead(ctx, q, func(time.Time) bool {
		s := f.shareSnaps[sp.SnapshotID]
		if s == nil {
			q.fault(http.StatusNotFound, "Snapshot %s could not be found.", sp.SnapshotID)
			return false
		}
		r, ok := f.c.resources[s.share]
		if !ok {
			q.fault(http.StatusBadRequest, "Share %s of snapshot %s is gone.", s.share, sp.SnapshotID)
			return false
		}
		share = r.name
		if sp.AvailabilityZone == "" {
			be = r.replicas[r.active].backend
			return true
		}
		if _, ok := f.c.sites[sp.AvailabilityZone]; !ok {
			q.fault(http.StatusBadRequest, "Availability zone %s could not be found.", sp.AvailabilityZone)
			return false
		}
		for _, rep := range r.replicas {
			if f.c.replicaSite(rep) == sp.AvailabilityZone {
				be = rep.backend
			}
		}
		if be == "" {
			q.fault(http.StatusBadRequest, "No valid host was found: share %s has no replica in zone %s to create a share from snapshot %s.", share, sp.AvailabilityZone, sp.SnapshotID)
			return false
		}
		return true
	}) {
		return
	}
	ids, err := f.c.TestFailoverStart(ctx, facadeKey("manila", "create_share"), be, []string{share})
	if err != nil {
		q.simFault(err)
		return
	}
	cs := &cloneShareRec{id: FacadeID("share", ids[0]), cloneID: ids[0], name: sp.Name, description: sp.Description,
		share: share, snapshotID: sp.SnapshotID, backend: be, created: f.c.opts.Now()}
	f.mu.Lock()
	f.cloneShares[cs.id] = cs
	f.mu.Unlock()
	f.read(ctx, q, func(time.Time) (any, int) {
		for _, v := range f.cloneShareViews() {
			if v.id == cs.id {
				return map[string]any{"share": v.render(q, project, true)}, http.StatusOK
			}
		}
		q.fault(http.StatusInternalServerError, "The clone of share %s vanished.", share)
		return nil, 0
	})
}

// manilaDeleteShare deletes a drill clone (TestFailoverStop); the facade
// deletes no protected share.
func (f *storageFacade) manilaDeleteShare(ctx context.Context, q *osReq, id string) {
	f.c.mu.Lock()
	f.mu.Lock()
	cs := f.cloneShares[id]
	var protected *resource
	if cs == nil {
		protected = f.shareByID(id)
	} else if _, ok := f.c.clones[cs.cloneID]; !ok {
		delete(f.cloneShares, id)
		cs = nil
	}
	replicated := protected != nil && len(protected.replicas) > 1
	f.mu.Unlock()
	f.c.mu.Unlock()
	switch {
	case replicated:
		q.fault(http.StatusBadRequest, "Share %s has replicas. Remove the replicas before deleting the share.", id)
		return
	case protected != nil:
		q.fault(http.StatusForbidden, "Share %s is protected by Ferry; the facade deletes only drill clones.", id)
		return
	case cs == nil:
		q.fault(http.StatusNotFound, "Share %s could not be found.", id)
		return
	}
	if err := f.c.TestFailoverStop(ctx, facadeKey("manila", "delete_share"), cs.backend, []string{cs.cloneID}); err != nil {
		q.simFault(err)
		return
	}
	f.mu.Lock()
	delete(f.cloneShares, id)
	f.mu.Unlock()
	q.empty(http.StatusAccepted)
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
