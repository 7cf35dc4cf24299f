package sim

// Cinder's generic volume groups on the facade (3.13+), their replication
// (3.38+), group snapshots and groups created from them (3.14+).
//
// A facade group is the volumes of one Ferry protection group on one
// backend (the demo's crm and shop on a-block): id
// FacadeID("group", "<group>@<backend>"), name the protection group's, of
// the one group type ferry-group-replication (consistent snapshots and
// replication). Its replication_status follows its volumes: disabled when
// none has a second replica, enabled while all are active on the group's
// backend, failed-over while all are active elsewhere, error when they are
// split or partly replicated. The actions map onto the simulator:
//
//	failover_replication  Promote of the volumes' replicas on the target
//	                      backend (secondary_backend_id: a replication target
//	                      id of the group's backend; "default" its own
//	                      backend). Planned (the active site is up and can
//	                      hand over: Demote, then Promote) or forced (it
//	                      cannot: Promote with force, losing what the
//	                      target had not applied), as a driver would.
//	                      Unlike Cinder's freeze, the simulator's refuses
//	                      the demote: a planned failover of a group whose
//	                      active backend is frozen is refused (400).
//	enable_replication    EnableReplication to the active backend's first
//	                      replication target, for volumes with one replica.
//	disable_replication   DisableReplication of every secondary replica.
//	list_replication_targets  the backend's replication targets' ids.
//	POST /group_snapshots SnapshotGroup on the backend the volumes are
//	                      active on; a member snapshot per volume.
//	create-from-src       TestFailoverStart: one clone per volume.
//	delete (of a group create-from-src made)  TestFailoverStop.
//
// create-from-src clones each volume's active replica, on the backend
// that serves the group now, as Cinder does: its replication target sits
// behind the primary's cinder-volume and has no API of its own, so a copy
// is of the active data, never of the secondary array's copy (a drill
// that boots the copies at the DR site finds them at the primary's). The
// clones hold what the active holds when they are made (the simulator
// clones a replica's current point), which is the group snapshot's point
// unless writes came in between.

import (
	"context"
	"net/http"
	"sort"
	"time"

	ferry "github.com/ferrydr/ferry"
)

// cinderGroup is a group as the facade shows it.
type cinderGroup struct {
	key, id, name string
	home          *backend
	vols          []*resource
	clone         *cloneGroupRec
	created       time.Time
}

// protectionGroups are the groups of protected volumes (callers hold c.mu
// and f.mu).
func (f *storageFacade) protectionGroups() []*cinderGroup {
	byKey := map[string]*cinderGroup{}
	for _, r := range f.volumes() {
		home := f.homeOf(r)
		key := volumeGroupKey(r, home)
		if key == "" {
			continue
		}
		g := byKey[key]
		if g == nil {
			g = &cinderGroup{key: key, id: FacadeID("group", key), name: r.group, home: home, created: r.created}
			byKey[key] = g
		}
		g.vols = append(g.vols, r)
		if r.created.Before(g.created) {
			g.created = r.created
		}
	}
	out := make([]*cinderGroup, 0, len(byKey))
	for _, g := range byKey {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// sortedCloneGroups are the groups create-from-src made.
func (f *storageFacade) sortedCloneGroups() []*cloneGroupRec {
	var out []*cloneGroupRec
	for _, g := range f.cloneGroups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// groups are every group: protection groups, then drill clone groups.
func (f *storageFacade) groups() []*cinderGroup {
	out := f.protectionGroups()
	for _, g := range f.sortedCloneGroups() {
		out = append(out, &cinderGroup{id: g.id, name: g.name, clone: g, created: g.created})
	}
	return out
}

func (f *storageFacade) findGroup(id string) *cinderGroup {
	for _, g := range f.groups() {
		if g.id == id {
			return g
		}
	}
	return nil
}

// liveClones are the clone group's members whose clones still exist.
func (f *storageFacade) liveClones(g *cloneGroupRec) []cloneMember {
	var out []cloneMember
	for _, m := range g.members {
		if _, ok := f.c.clones[m.cloneID]; ok {
			out = append(out, m)
		}
	}
	return out
}

func (f *storageFacade) cloneVolumeViews(g *cloneGroupRec) []volumeView {
	var out []volumeView
	for _, m := range f.liveClones(g) {
		b := f.c.backends[m.backend]
		v := volumeView{
			id: FacadeID("volume", m.cloneID), status: "available", replStatus: ferry.ReplicationDisabled,
			site: b.site, host: poolHost(b), groupID: g.id, snapshotID: m.snapshotID, created: g.created,
			typeName: cinderReplicatedType,
		}
		if g.sourceGroupID != "" {
			v.sourceVolID = FacadeID("volume", m.resource)
		}
		if clustered(b) {
			v.clusterName = clusterName(b)
		}
		out = append(out, v)
	}
	return out
}

// status is a group's status: error when a volume is.
func (g *cinderGroup) status() string {
	for _, r := range g.vols {
		if r.status == StatusError {
			return "error"
		}
	}
	return "available"
}

// replicationStatus follows the group's volumes (see the top of the file).
func (g *cinderGroup) replicationStatus() string {
	if g.clone != nil {
		return ferry.ReplicationDisabled
	}
	single, away := 0, 0
	for _, r := range g.vols {
		if r.status == StatusError {
			return ferry.ReplicationError
		}
		if len(r.replicas) < 2 {
			single++
		}
		if r.replicas[r.active].backend != g.home.name {
			away++
		}
	}
	switch {
	case single == len(g.vols):
		return ferry.ReplicationDisabled
	case single > 0:
		return ferry.ReplicationError
	case away == len(g.vols):
		return ferry.ReplicationFailedOver
	case away > 0:
		return ferry.ReplicationError
	}
	return ferry.ReplicationEnabled
}

func (g *cinderGroup) volumeIDs(f *storageFacade) []string {
	ids := []string{}
	if g.clone != nil {
		for _, m := range f.liveClones(g.clone) {
			ids = append(ids, FacadeID("volume", m.cloneID))
		}
		return ids
	}
	for _, r := range g.vols {
		ids = append(ids, FacadeID("volume", r.name))
	}
	return ids
}

func (f *storageFacade) groupView(q *osReq, project string, g *cinderGroup, detail bool) map[string]any {
	if !detail {
		return map[string]any{"id": g.id, "name": g.name}
	}
	var az any
	switch {
	case g.home != nil:
		az = g.home.site
	case len(g.clone.members) > 0:
		az = f.c.backends[g.clone.members[0].backend].site
	}
	out := map[string]any{
		"id": g.id, "status": g.status(), "availability_zone": az, "created_at": osStamp(g.created),
		"name": g.name, "description": nil, "group_type": FacadeID("group-type", cinderGroupType),
		"volume_types": []string{FacadeID("volume-type", cinderReplicatedType)},
	}
	if g.clone != nil && g.clone.description != "" {
		out["description"] = g.clone.description
	}
	if q.ver.atLeast(cvGroupSnapshots) {
		out["group_snapshot_id"], out["source_group_id"] = nil, nil
		if g.clone != nil {
			out["group_snapshot_id"], out["source_group_id"] = nullable(g.clone.groupSnapshotID), nullable(g.clone.sourceGroupID)
		}
	}
	if q.ver.atLeast(cvGroupVolumeList) && q.boolParam("list_volume") {
		out["volumes"] = g.volumeIDs(f)
	}
	if q.ver.atLeast(cvGroupRepl) {
		out["replication_status"] = g.replicationStatus()
	}
	if q.ver.atLeast(cvProjectID) {
		out["project_id"] = project
	}
	return out
}

// --- routes ----------------------------------------------------------------

func (f *storageFacade) cinderGroupRoutes(ctx context.Context, q *osReq, project string, rest []string) {
	m := q.r.Method
	switch {
	case m == http.MethodGet && (match(rest, "groups") || match(rest, "groups", "detail")):
		detail := len(rest) == 2
		f.read(ctx, q, func(time.Time) (any, int) {
			list := []any{}
			for _, g := range f.groups() {
				list = append(list, f.groupView(q, project, g, detail))
			}
			return map[string]any{"groups": list}, http.StatusOK
		})
	case m == http.MethodGet && match(rest, "groups", "*"):
		f.read(ctx, q, func(time.Time) (any, int) {
			g := f.findGroup(rest[1])
			if g == nil {
				q.fault(http.StatusNotFound, "Group %s could not be found.", rest[1])
				return nil, 0
			}
			return map[string]any{"group": f.groupView(q, project, g, true)}, http.StatusOK
		})
	case m == http.MethodPost && match(rest, "groups", "action"):
		f.cinderCreateFromSrc(ctx, q)
	case m == http.MethodPost && match(rest, "groups", "*", "action"):
		f.cinderGroupAction(ctx, q, rest[1])
	case m == http.MethodPost && match(rest, "groups"):
		q.fault(http.StatusBadRequest, "Invalid input received: the facade's groups are its protection groups (one per group and backend); it creates no others.")
	case m == http.MethodPut && match(rest, "groups", "*"):
		q.fault(http.StatusBadRequest, "Invalid group: the facade's groups hold their protection group's volumes; their membership cannot change.")
	default:
		q.fault(http.StatusNotFound, "The resource could not be found.")
	}
}

func (f *storageFacade) cinderGroupAction(ctx context.Context, q *osReq, id string) {
	var body map[string]map[string]any
	if !q.body(&body) {
		return
	}
	if len(body) != 1 {
		q.fault(http.StatusBadRequest, "Invalid input received: exactly one action is expected, got %d.", len(body))
		return
	}
	for action, args := range body {
		if args == nil {
			args = map[string]any{}
		}
		switch action {
		case "delete":
			f.cinderDeleteGroup(ctx, q, id, args)
		case "failover_replication", "enable_replication", "disable_replication", "list_replication_targets":
			if !q.ver.atLeast(cvGroupRepl) {
				q.notAtVersion()
				return
			}
			f.cinderGroupReplication(ctx, q, id, action, args)
		default:
			q.fault(http.StatusBadRequest, "There is no such action: %s", action)
		}
	}
}

// groupPlan is what a replication action will do, decided under the lock.
type groupPlan struct {
	g       *cinderGroup
	names   []string
	target  string
	planned bool
	// byBackend groups volume names by a backend (the old actives to demote,
	// or the backends to create or remove replicas on).
	byBackend map[string][]string
	pairs     map[[2]string][]string // enable: (active, target) -> volumes
}

func (f *storageFacade) cinderGroupReplication(ctx context.Context, q *osReq, id, action string, args map[string]any) {
	var plan groupPlan
	code := 0
	_, err := query(ctx, f.c, call{op: "facade.read", targets: []string{q.site}}, func(time.Time) (struct{}, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		g := f.findGroup(id)
		switch {
		case g == nil:
			code = http.StatusNotFound
			q.fault(code, "Group %s could not be found.", id)
			return struct{}{}, nil
		case g.clone != nil:
			code = http.StatusBadRequest
			q.fault(code, "Invalid group type: group %s is not a replication group (it holds a drill's clones).", id)
			return struct{}{}, nil
		}
		plan.g = g
		for _, r := range g.vols {
			plan.names = append(plan.names, r.name)
		}
		rs := g.replicationStatus()
		switch action {
		case "list_replication_targets":
			return struct{}{}, nil
		case "failover_replication":
			if g.status() != "available" || (rs != ferry.ReplicationEnabled && rs != ferry.ReplicationFailedOver) {
				code = http.StatusBadRequest
				q.fault(code, "Invalid group: Group %s replication status must be ['enabled', 'failed-over'] and status available, but current status is: %s (%s). Cannot failover replication.", id, rs, g.status())
				return struct{}{}, nil
			}
			sb, _ := args["secondary_backend_id"].(string)
			switch {
			case sb == ferry.ActiveBackendDefault:
				plan.target = g.home.name
			case sb == "" && len(g.home.targets) > 0:
				plan.target = g.home.targets[0].Backend
			default:
				for _, t := range g.home.targets {
					if t.ID == sb {
						plan.target = t.Backend
					}
				}
			}
			if plan.target == "" {
				code = http.StatusBadRequest
				q.fault(code, "Invalid input received: %q is not a replication target (backend_id) of %s.", sb, g.home.name)
				return struct{}{}, nil
			}
			plan.planned, plan.byBackend = true, map[string][]string{}
			tsite := f.c.backends[plan.target].site
			for _, r := range g.vols {
				if replicaIndex(r, plan.target) < 0 {
					code = http.StatusBadRequest
					q.fault(code, "Invalid volume: volume %s has no replica on %s.", r.name, plan.target)
					return struct{}{}, nil
				}
				old := r.replicas[r.active]
				if old.backend == plan.target {
					continue
				}
				plan.byBackend[old.backend] = append(plan.byBackend[old.backend], r.name)
				if !f.c.linkUp(f.c.replicaSite(old), tsite) {
					plan.planned = false
				}
			}
		case "enable_replication":
			if g.status() != "available" || (rs != ferry.ReplicationEnabled && rs != ferry.ReplicationDisabled && rs != ferry.ReplicationError) {
				code = http.StatusBadRequest
				q.fault(code, "Invalid group: Group %s replication status must be ['disabled', 'enabled'], but current status is: %s. Cannot enable replication.", id, rs)
				return struct{}{}, nil
			}
			plan.pairs = map[[2]string][]string{}
			for _, r := range g.vols {
				if len(r.replicas) > 1 {
					continue
				}
				act := f.c.backends[r.replicas[r.active].backend]
				if len(act.targets) == 0 {
					code = http.StatusBadRequest
					q.fault(code, "Invalid volume: backend %s of volume %s has no replication target.", act.name, r.name)
					return struct{}{}, nil
				}
				k := [2]string{act.name, act.targets[0].Backend}
				plan.pairs[k] = append(plan.pairs[k], r.name)
			}
		case "disable_replication":
			if rs != ferry.ReplicationEnabled && rs != ferry.ReplicationError {
				code = http.StatusBadRequest
				q.fault(code, "Invalid group: Group %s replication status must be ['enabled', 'error'], but current status is: %s. Cannot disable replication.", id, rs)
				return struct{}{}, nil
			}
			plan.byBackend = map[string][]string{}
			for _, r := range g.vols {
				for i, rep := range r.replicas {
					if i != r.active {
						plan.byBackend[rep.backend] = append(plan.byBackend[rep.backend], r.name)
					}
				}
			}
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
	switch action {
	case "list_replication_targets":
		targets := []any{}
		for _, t := range plan.g.home.targets {
			targets = append(targets, map[string]any{"backend_id": t.ID})
		}
		q.json(http.StatusOK, map[string]any{"replication_targets": targets})
	case "failover_replication":
		if err := f.failoverGroup(ctx, plan); err != nil {
			q.simFault(err)
			return
		}
		q.empty(http.StatusAccepted)
	case "enable_replication":
		for _, k := range sortedPairs(plan.pairs) {
			if err := f.c.EnableReplication(ctx, facadeKey("cinder", "enable_replication"), k[0], k[1], plan.pairs[k]); err != nil {
				q.simFault(err)
				return
			}
		}
		q.empty(http.StatusAccepted)
	case "disable_replication":
		for _, be := range sortedKeys(plan.byBackend) {
			if err := f.c.DisableReplication(ctx, facadeKey("cinder", "disable_replication"), be, plan.byBackend[be]); err != nil {
				q.simFault(err)
				return
			}
		}
		q.empty(http.StatusAccepted)
	}
}

// failoverGroup moves the group's volumes to the plan's target: a planned
// handover (demote where they are active, then promote, which hands every
// write over) when the actives can reach the target, a forced promote when
// they cannot. A promote that fails after the demote undoes the demote.
func (f *storageFacade) failoverGroup(ctx context.Context, plan groupPlan) error {
	if !plan.planned {
		_, err := f.c.Promote(ctx, facadeKey("cinder", "failover_replication"), plan.target, plan.names, true)
		return err
	}
	olds := sortedKeys(plan.byBackend)
	for i, old := range olds {
		if err := f.c.Demote(ctx, facadeKey("cinder", "failover_replication-demote"), old, plan.byBackend[old]); err != nil {
			f.undoDemote(olds[:i], plan)
			return err
		}
	}
	if _, err := f.c.Promote(ctx, facadeKey("cinder", "failover_replication"), plan.target, plan.names, false); err != nil {
		f.undoDemote(olds, plan)
		return err
	}
	return nil
}

func (f *storageFacade) undoDemote(olds []string, plan groupPlan) {
	for _, old := range olds {
		_, _ = f.c.Promote(context.Background(), facadeKey("cinder", "failover_replication-undo"), old, plan.byBackend[old], false)
	}
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedPairs(m map[[2]string][]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0]+"/"+out[i][1] < out[j][0]+"/"+out[j][1] })
	return out
}

// cinderDeleteGroup deletes a group create-from-src made, with its clones
// (TestFailoverStop); a protection group is not the facade's to delete.
func (f *storageFacade) cinderDeleteGroup(ctx context.Context, q *osReq, id string, args map[string]any) {
	deleteVolumes, _ := args["delete-volumes"].(bool)
	f.c.mu.Lock()
	f.mu.Lock()
	g := f.findGroup(id)
	var live []cloneMember
	if g != nil && g.clone != nil {
		live = f.liveClones(g.clone)
	}
	f.mu.Unlock()
	f.c.mu.Unlock()
	switch {
	case g == nil:
		q.fault(http.StatusNotFound, "Group %s could not be found.", id)
		return
	case g.clone == nil:
		q.fault(http.StatusBadRequest, "Invalid group: group %s holds the protected volumes of %s; the facade does not delete them.", id, g.name)
		return
	case len(live) > 0 && !deleteVolumes:
		q.fault(http.StatusBadRequest, "Invalid group: Group %s still contains volumes. The delete-volumes flag is required to delete it.", id)
		return
	}
	byBackend := map[string][]string{}
	for _, m := range live {
		byBackend[m.backend] = append(byBackend[m.backend], m.cloneID)
	}
	for _, be := range sortedKeys(byBackend) {
		if err := f.c.TestFailoverStop(ctx, facadeKey("cinder", "delete_group"), be, byBackend[be]); err != nil {
			q.simFault(err)
			return
		}
	}
	f.mu.Lock()
	delete(f.cloneGroups, id)
	f.mu.Unlock()
	q.empty(http.StatusAccepted)
}
