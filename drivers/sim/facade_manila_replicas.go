package sim

// Manila's share replicas on the facade: list, show, create, delete,
// promote and resync (see facade_manila.go for how they map onto the
// simulator).

import (
	"context"
	"net/http"
	"time"

	ferry "github.com/ferrydr/ferry"
)

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
		share, be, old    string
		isActive, demoted bool
		planned           bool
	)
	if !f.lockedRead(ctx, q, func(time.Time) bool {
		r, i := f.findReplica(id)
		if r == nil {
			q.fault(http.StatusNotFound, "No replica exists with ID %s.", id)
			return false
		}
		share, be = r.name, r.replicas[i].backend
		isActive, demoted = i == r.active, r.demoted
		o := r.replicas[r.active]
		old = o.backend
		planned = f.c.linkUp(f.c.replicaSite(o), f.c.replicaSite(r.replicas[i]))
		return true
	}) {
		return
	}
	// Manila: nothing to do for the active replica. The simulator's
	// demoted active (between a demote and a promote) is promoted back.
	if isActive && (action == "resync" || !demoted) {
		q.empty(http.StatusOK)
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
