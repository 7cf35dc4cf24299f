package sim

// Group snapshots, the volume snapshots they hold, and the groups
// create-from-src makes from them or from a group: a drill's copies (see
// facade_cinder_groups.go for how they map onto the simulator).

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// groupSnapRec is a group snapshot taken through the facade.
type groupSnapRec struct {
	id, name, description string
	groupID, groupKey     string
	backend               string
	created               time.Time
	snap                  drivers.Snapshot
	// members are the volumes it covers, in order, with their snapshots'
	// ids.
	members []snapMember
}

type snapMember struct{ resource, id string }

func memberSnapID(groupSnapID, resource string) string {
	return FacadeID("snapshot", groupSnapID+"/"+resource)
}

// cloneGroupRec is a group create-from-src made: a drill's clones.
type cloneGroupRec struct {
	id, name, description string
	created               time.Time
	sourceGroupID         string
	groupSnapshotID       string
	members               []cloneMember
}

type cloneMember struct {
	resource, cloneID, backend string
	snapshotID                 string // the member snapshot it was made from, if any
}

// cinderCreateFromSrc is POST /groups/action {"create-from-src": ...}: a
// drill's clones of a protection group or of one of its group snapshots.
func (f *storageFacade) cinderCreateFromSrc(ctx context.Context, q *osReq) {
	if !q.ver.atLeast(cvGroupSnapshots) {
		q.notAtVersion()
		return
	}
	var body struct {
		Src *struct {
			Name            string `json:"name"`
			Description     string `json:"description"`
			GroupSnapshotID string `json:"group_snapshot_id"`
			SourceGroupID   string `json:"source_group_id"`
		} `json:"create-from-src"`
	}
	if !q.body(&body) {
		return
	}
	src := body.Src
	if src == nil {
		q.fault(http.StatusBadRequest, "Invalid input received: the body has no create-from-src.")
		return
	}
	if (src.GroupSnapshotID == "") == (src.SourceGroupID == "") {
		q.fault(http.StatusBadRequest, "Invalid input received: Either 'group_snapshot_id' or 'source_group_id' must be provided to create group %s from source.", src.Name)
		return
	}
	// Decide, under the lock, what to clone: each volume's active replica.
	type pick struct{ resource, backend, snapID string }
	var picks []pick
	code := 0
	_, err := query(ctx, f.c, call{op: "facade.read", targets: []string{q.site}}, func(time.Time) (struct{}, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		groupID, snapID := src.SourceGroupID, src.GroupSnapshotID
		var members []snapMember
		if snapID != "" {
			gs := f.groupSnaps[snapID]
			if gs == nil {
				code = http.StatusNotFound
				q.fault(code, "GroupSnapshot %s could not be found.", snapID)
				return struct{}{}, nil
			}
			groupID, members = gs.groupID, gs.members
		}
		g := f.findGroup(groupID)
		if g == nil || g.clone != nil {
			code = http.StatusNotFound
			if g != nil {
				code = http.StatusBadRequest
			}
			q.fault(code, "Group %s could not be found.", groupID)
			return struct{}{}, nil
		}
		if members == nil {
			for _, r := range g.vols {
				members = append(members, snapMember{resource: r.name})
			}
		}
		for _, m := range members {
			r, ok := f.c.resources[m.resource]
			if !ok {
				code = http.StatusBadRequest
				q.fault(code, "Invalid input received: volume %s of the source is gone.", m.resource)
				return struct{}{}, nil
			}
			picks = append(picks, pick{resource: r.name, backend: r.replicas[r.active].backend, snapID: m.id})
		}
		return struct{}{}, nil
	})
	if err != nil {
		q.simFault(err)
		return
	}
	if code != 0 {
		return
	}
	rec := &cloneGroupRec{name: src.Name, description: src.Description, created: f.c.opts.Now(),
		sourceGroupID: src.SourceGroupID, groupSnapshotID: src.GroupSnapshotID}
	byBackend := map[string][]int{}
	var order []string
	for i, p := range picks {
		if _, ok := byBackend[p.backend]; !ok {
			order = append(order, p.backend)
		}
		byBackend[p.backend] = append(byBackend[p.backend], i)
		rec.members = append(rec.members, cloneMember{resource: p.resource, backend: p.backend, snapshotID: p.snapID})
	}
	for _, be := range order {
		var names []string
		for _, i := range byBackend[be] {
			names = append(names, picks[i].resource)
		}
		ids, err := f.c.TestFailoverStart(ctx, facadeKey("cinder", "create-from-src"), be, names)
		if err != nil {
			f.dropClones(rec)
			q.simFault(err)
			return
		}
		for k, i := range byBackend[be] {
			rec.members[i].cloneID = ids[k]
		}
	}
	ids := make([]string, len(rec.members))
	for i, m := range rec.members {
		ids[i] = m.cloneID
	}
	rec.id = FacadeID("group", "clone/"+joinIDs(ids))
	f.mu.Lock()
	f.cloneGroups[rec.id] = rec
	f.mu.Unlock()
	q.json(http.StatusAccepted, map[string]any{"group": map[string]any{"id": rec.id, "name": rec.name}})
}

// dropClones removes the clones a failed create-from-src made.
func (f *storageFacade) dropClones(rec *cloneGroupRec) {
	for _, m := range rec.members {
		if m.cloneID != "" {
			_ = f.c.TestFailoverStop(context.Background(), facadeKey("cinder", "create-from-src-undo"), m.backend, []string{m.cloneID})
		}
	}
}

func joinIDs(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ","
		}
		out += id
	}
	return out
}

// --- group snapshots and snapshots -----------------------------------------

func (f *storageFacade) groupSnapView(q *osReq, project string, gs *groupSnapRec, detail bool) map[string]any {
	out := map[string]any{"id": gs.id, "name": nullable(gs.name), "group_type_id": FacadeID("group-type", cinderGroupType)}
	if !detail {
		return out
	}
	out["group_id"], out["status"], out["created_at"], out["description"] = gs.groupID, "available", osStamp(gs.created), nullable(gs.description)
	if q.ver.atLeast(cvProjectID) {
		out["project_id"] = project
	}
	return out
}

func (f *storageFacade) sortedGroupSnaps() []*groupSnapRec {
	var out []*groupSnapRec
	for _, gs := range f.groupSnaps {
		out = append(out, gs)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

func (f *storageFacade) cinderGroupSnapshotRoutes(ctx context.Context, q *osReq, project string, rest []string) {
	m := q.r.Method
	switch {
	case m == http.MethodGet && (match(rest, "group_snapshots") || match(rest, "group_snapshots", "detail")):
		detail := len(rest) == 2
		f.read(ctx, q, func(time.Time) (any, int) {
			list := []any{}
			for _, gs := range f.sortedGroupSnaps() {
				if g := q.r.URL.Query().Get("group_id"); g != "" && g != gs.groupID {
					continue
				}
				list = append(list, f.groupSnapView(q, project, gs, detail))
			}
			return map[string]any{"group_snapshots": list}, http.StatusOK
		})
	case m == http.MethodGet && match(rest, "group_snapshots", "*"):
		f.read(ctx, q, func(time.Time) (any, int) {
			gs := f.groupSnaps[rest[1]]
			if gs == nil {
				q.fault(http.StatusNotFound, "GroupSnapshot %s could not be found.", rest[1])
				return nil, 0
			}
			return map[string]any{"group_snapshot": f.groupSnapView(q, project, gs, true)}, http.StatusOK
		})
	case m == http.MethodDelete && match(rest, "group_snapshots", "*"):
		f.mu.Lock()
		gs := f.groupSnaps[rest[1]]
		found := gs != nil
		if found {
			delete(f.groupSnaps, rest[1])
		}
		f.mu.Unlock()
		if !found {
			q.fault(http.StatusNotFound, "GroupSnapshot %s could not be found.", rest[1])
			return
		}
		q.empty(http.StatusAccepted)
	case m == http.MethodPost && match(rest, "group_snapshots"):
		f.cinderCreateGroupSnapshot(ctx, q)
	default:
		q.fault(http.StatusNotFound, "The resource could not be found.")
	}
}

// cinderCreateGroupSnapshot is the simulator's SnapshotGroup of a
// protection group on the backend its volumes are active on.
func (f *storageFacade) cinderCreateGroupSnapshot(ctx context.Context, q *osReq) {
	var body struct {
		GS *struct {
			GroupID     string `json:"group_id"`
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"group_snapshot"`
	}
	if !q.body(&body) {
		return
	}
	if body.GS == nil || body.GS.GroupID == "" {
		q.fault(http.StatusBadRequest, "Invalid input received: a group_snapshot with a group_id is required.")
		return
	}
	var (
		names   []string
		active  string
		g       *cinderGroup
		code    int
		groupID = body.GS.GroupID
	)
	_, err := query(ctx, f.c, call{op: "facade.read", targets: []string{q.site}}, func(time.Time) (struct{}, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		g = f.findGroup(groupID)
		if g == nil {
			code = http.StatusNotFound
			q.fault(code, "Group %s could not be found.", groupID)
			return struct{}{}, nil
		}
		if g.clone != nil || g.status() != "available" {
			code = http.StatusBadRequest
			q.fault(code, "Invalid group: group %s cannot be snapshotted by the facade (a drill's clones, or in error).", groupID)
			return struct{}{}, nil
		}
		for _, r := range g.vols {
			names = append(names, r.name)
			be := r.replicas[r.active].backend
			if active != "" && active != be {
				code = http.StatusBadRequest
				q.fault(code, "Invalid group: the volumes of group %s are active on %s and %s: a consistent snapshot needs them on one backend.", groupID, active, be)
				return struct{}{}, nil
			}
			active = be
		}
		return struct{}{}, nil
	})
	if err != nil {
		q.simFault(err)
		return
	}
	if code != 0 {
		return
	}
	snap, err := f.c.SnapshotGroup(ctx, facadeKey("cinder", "group_snapshot"), active, names)
	if err != nil {
		q.simFault(err)
		return
	}
	gs := &groupSnapRec{id: FacadeID("group-snapshot", snap.ID), name: body.GS.Name, description: body.GS.Description,
		groupID: groupID, groupKey: g.key, backend: active, created: snap.Taken, snap: snap}
	for _, n := range names {
		gs.members = append(gs.members, snapMember{resource: n, id: memberSnapID(gs.id, n)})
	}
	f.mu.Lock()
	f.groupSnaps[gs.id] = gs
	f.mu.Unlock()
	q.json(http.StatusAccepted, map[string]any{"group_snapshot": map[string]any{
		"id": gs.id, "name": nullable(gs.name), "group_type_id": FacadeID("group-type", cinderGroupType)}})
}

// cinderSnapshots serves the volume snapshots of the group snapshots (a
// member snapshot per volume).
func (f *storageFacade) cinderSnapshots(ctx context.Context, q *osReq, project string, rest []string) {
	f.read(ctx, q, func(now time.Time) (any, int) {
		var list []map[string]any
		for _, gs := range f.sortedGroupSnaps() {
			for _, m := range gs.members {
				s := map[string]any{"id": m.id, "name": nil}
				if len(rest) > 1 {
					s["created_at"], s["updated_at"] = osStamp(gs.created), osStamp(now)
					s["description"], s["volume_id"], s["status"], s["size"] = nil, FacadeID("volume", m.resource), "available", 1
					s["metadata"] = map[string]string{}
					s["os-extended-snapshot-attributes:progress"] = "100%"
					s["os-extended-snapshot-attributes:project_id"] = project
					if q.ver.atLeast(cvGroupSnapshots) {
						s["group_snapshot_id"] = gs.id
					}
					if q.ver.atLeast(apiVersion{3, 41}) {
						s["user_id"] = "admin"
					}
					if q.ver.atLeast(cvUseQuota) {
						s["consumes_quota"] = true
					}
				}
				list = append(list, s)
			}
		}
		if len(rest) == 2 && rest[1] != "detail" {
			for _, s := range list {
				if s["id"] == rest[1] {
					return map[string]any{"snapshot": s}, http.StatusOK
				}
			}
			q.fault(http.StatusNotFound, "Snapshot %s could not be found.", rest[1])
			return nil, 0
		}
		if list == nil {
			list = []map[string]any{}
		}
		return map[string]any{"snapshots": list}, http.StatusOK
	})
}
