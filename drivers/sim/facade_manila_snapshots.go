package sim

// Manila's snapshots on the facade and the shares made from them: a
// drill's clones (see facade_manila.go for how they map onto the
// simulator).

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/ferrydr/ferry/drivers"
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
