package sim

import (
	"context"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

var (
	_ drivers.Storage = (*Cloud)(nil)
	_ drivers.Compute = (*Cloud)(nil)
	_ drivers.Network = (*Cloud)(nil)
	_ drivers.DNS     = (*Cloud)(nil)
	_ drivers.Verify  = (*Cloud)(nil)
)

func (c *Cloud) storageCall(op, key, be string, resources []string, extra ...string) call {
	targets := append([]string{be}, resources...)
	targets = append(targets, extra...)
	c.mu.Lock()
	if b, ok := c.backends[be]; ok {
		targets = append(targets, b.site)
	}
	c.mu.Unlock()
	return call{op: op, key: key, target: be, targets: targets}
}

// reachable returns the backend, or Unreachable when its site is down.
func (c *Cloud) reachable(op, name string) (*backend, error) {
	b, ok := c.backends[name]
	if !ok {
		return nil, perm(op, "unknown backend %q", name)
	}
	if !c.siteUp(b.site) {
		return nil, unreachable(op, "backend %s: site %s is down", name, b.site)
	}
	return b, nil
}

// replicaOn finds each resource's replica on backend.
func (c *Cloud) replicasOn(op, be string, names []string) ([]*resource, []int, error) {
	rs := make([]*resource, len(names))
	idx := make([]int, len(names))
	for k, n := range names {
		r, ok := c.resources[n]
		if !ok {
			return nil, nil, perm(op, "unknown resource %q", n)
		}
		idx[k] = -1
		for i, rep := range r.replicas {
			if rep.backend == be {
				idx[k] = i
			}
		}
		if idx[k] < 0 {
			return nil, nil, perm(op, "%s has no replica on backend %s", n, be)
		}
		rs[k] = r
	}
	return rs, idx, nil
}

// Capabilities reports that the simulator can do everything, including
// counting lost writes exactly.
func (c *Cloud) Capabilities(ctx context.Context, be string) (drivers.Capabilities, error) {
	const op = "storage.capabilities"
	return query(ctx, c, c.storageCall(op, "", be, nil), func(time.Time) (drivers.Capabilities, error) {
		if _, err := c.reachable(op, be); err != nil {
			return drivers.Capabilities{}, err
		}
		return drivers.Capabilities{Replication: true, ConsistencyGroup: true, Freeze: true, Fence: true,
			TestFailover: true, ReportsLostWrites: true}, nil
	})
}

// BackendStatus reports a backend's bookkeeping and its members' views.
func (c *Cloud) BackendStatus(ctx context.Context, be string) (drivers.BackendStatus, error) {
	const op = "storage.backend_status"
	return query(ctx, c, c.storageCall(op, "", be, nil), func(time.Time) (drivers.BackendStatus, error) {
		b, err := c.reachable(op, be)
		if err != nil {
			return drivers.BackendStatus{}, err
		}
		st := drivers.BackendStatus{Backend: b.name, Site: b.site, Reachable: true, ReplicationStatus: b.replStatus,
			ActiveBackendID: b.activeID, Frozen: b.frozen, Fenced: b.fenced, FenceEpoch: b.epoch, Members: []drivers.MemberStatus{}}
		for _, m := range b.members {
			st.Members = append(st.Members, drivers.MemberStatus{Name: m.name, ActiveBackendID: m.activeID, Up: true})
		}
		return st, nil
	})
}

// ReplicationStatus reports every replica of the resources. It is not aimed
// at one backend, so a down site shows as replicas in state error rather
// than as a failed call.
func (c *Cloud) ReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.replication_status"
	return query(ctx, c, call{op: op, targets: resources}, func(now time.Time) ([]drivers.ReplicaStatus, error) {
		return c.statuses(op, resources, now)
	})
}

func (c *Cloud) statuses(op string, resources []string, now time.Time) ([]drivers.ReplicaStatus, error) {
	out := []drivers.ReplicaStatus{}
	for _, n := range resources {
		r, ok := c.resources[n]
		if !ok {
			return nil, perm(op, "unknown resource %q", n)
		}
		for i := range r.replicas {
			out = append(out, c.replicaStatus(r, i, now))
		}
	}
	return out, nil
}

// activeOn checks that every resource's active replica is on backend.
func (c *Cloud) activeOn(op, be string, resources []string) ([]*resource, error) {
	rs, idx, err := c.replicasOn(op, be, resources)
	if err != nil {
		return nil, err
	}
	for k, r := range rs {
		if idx[k] != r.active {
			return nil, perm(op, "%s is not active on backend %s", r.name, be)
		}
	}
	return rs, nil
}

// SnapshotGroup records the active replicas' seqs as one consistent point.
func (c *Cloud) SnapshotGroup(ctx context.Context, key, be string, resources []string) (drivers.Snapshot, error) {
	const op = "storage.snapshot_group"
	return mutate(ctx, c, c.storageCall(op, key, be, resources), func(now time.Time) (drivers.Snapshot, error) {
		if _, err := c.reachable(op, be); err != nil {
			return drivers.Snapshot{}, err
		}
		rs, err := c.activeOn(op, be, resources)
		if err != nil {
			return drivers.Snapshot{}, err
		}
		snap := drivers.Snapshot{ID: c.id("snap"), Taken: now, Seqs: map[string]int64{}}
		for _, r := range rs {
			snap.Seqs[r.name] = r.replicas[r.active].seq()
		}
		return snap, nil
	})
}

// Sync brings every following secondary of the resources up to the active
// now, regardless of lag.
func (c *Cloud) Sync(ctx context.Context, key, be string, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.sync"
	return mutate(ctx, c, c.storageCall(op, key, be, resources), func(now time.Time) ([]drivers.ReplicaStatus, error) {
		if _, err := c.reachable(op, be); err != nil {
			return nil, err
		}
		rs, err := c.activeOn(op, be, resources)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			src := r.replicas[r.active]
			for i, sec := range r.replicas {
				if i != r.active && !sec.diverged && !c.linkUp(c.replicaSite(src), c.replicaSite(sec)) {
					return nil, unreachable(op, "%s: no link from %s to %s", r.name, src.backend, sec.backend)
				}
			}
		}
		for _, r := range rs {
			src := r.replicas[r.active]
			for i, sec := range r.replicas {
				if i != r.active && !sec.diverged {
					sec.log = append(sec.log[:0:0], src.log...)
				}
			}
		}
		return c.statuses(op, resources, now)
	})
}

// Demote makes the resources' active replicas on backend read-only. A
// replica on backend that is already a secondary is left as it is.
func (c *Cloud) Demote(ctx context.Context, key, be string, resources []string) error {
	const op = "storage.demote"
	_, err := mutate(ctx, c, c.storageCall(op, key, be, resources), func(time.Time) (struct{}, error) {
		if _, err := c.reachable(op, be); err != nil {
			return struct{}{}, err
		}
		rs, idx, err := c.replicasOn(op, be, resources)
		if err != nil {
			return struct{}{}, err
		}
		for k, r := range rs {
			if idx[k] == r.active {
				r.demoted = true
			}
		}
		return struct{}{}, nil
	})
	return err
}

// Promote makes the resources' replicas on backend active. Without force the
// current active must have been demoted; with force it may be gone, and the
// promoted replica keeps whatever it had applied. Every other replica that
// holds writes the new active lacks, and a forcibly replaced old active in
// any case, is marked diverged: it stays a read-only secondary until Resync,
// so a returning old primary can never become a second writable active.
func (c *Cloud) Promote(ctx context.Context, key, be string, resources []string, force bool) (drivers.PromoteResult, error) {
	const op = "storage.promote"
	return mutate(ctx, c, c.storageCall(op, key, be, resources), func(time.Time) (drivers.PromoteResult, error) {
		var res drivers.PromoteResult
		if _, err := c.reachable(op, be); err != nil {
			return res, err
		}
		rs, idx, err := c.replicasOn(op, be, resources)
		if err != nil {
			return res, err
		}
		for k, r := range rs {
			if idx[k] == r.active {
				continue
			}
			if r.replicas[idx[k]].diverged {
				return res, perm(op, "%s on %s has diverged: resync it first", r.name, be)
			}
			if !force && !r.demoted {
				return res, perm(op, "%s is active on %s: demote first or force", r.name, r.replicas[r.active].backend)
			}
		}
		res.Points = []drivers.PromotedPoint{}
		for k, r := range rs {
			nw := r.replicas[idx[k]]
			if idx[k] != r.active && r.demoted {
				// A planned promote follows a demote: as with RBD's
				// demote/promote, the demoted primary's last writes reach
				// the peer before it takes over, when the link allows. So a
				// planned failover loses nothing even if writes slipped in
				// after the final sync.
				if old := r.replicas[r.active]; c.linkUp(c.replicaSite(old), c.replicaSite(nw)) {
					nw.log = append(nw.log[:0:0], old.log...)
				}
			}
			pt := drivers.PromotedPoint{Resource: r.name, Seq: nw.seq(), At: r.lastAt(nw)}
			if idx[k] == r.active {
				// Promoting the active again undoes a demote: how a planned
				// failover that fails before promote is rolled back.
				r.demoted = false
				res.Points = append(res.Points, pt)
				continue
			}
			old := r.replicas[r.active]
			forced := !r.demoted
			if lost := old.seq() - nw.seq(); lost > 0 {
				pt.LostWrites = lost
				pt.DataLoss = r.lastAt(old).Sub(pt.At)
				r.lost += lost
			}
			for i, rep := range r.replicas {
				if i == idx[k] {
					continue
				}
				if (i == r.active && forced) || rep.seq() > nw.seq() {
					if !rep.diverged || rep.forkAt > nw.seq() {
						rep.forkAt = min(rep.seq(), nw.seq())
					}
					rep.diverged = true
				}
			}
			r.active = idx[k]
			r.demoted = false
			res.Points = append(res.Points, pt)
		}
		return res, nil
	})
}

// FailoverCompleted sets one cluster member's active_backend_id.
func (c *Cloud) FailoverCompleted(ctx context.Context, key, be, mem, activeBackendID string) error {
	const op = "storage.failover_completed"
	cl := c.storageCall(op, key, be, nil, mem)
	cl.target = be + "/" + mem
	_, err := mutate(ctx, c, cl, func(time.Time) (struct{}, error) {
		b, err := c.reachable(op, be)
		if err != nil {
			return struct{}{}, err
		}
		for _, m := range b.members {
			if m.name == mem {
				m.activeID = activeBackendID
				return struct{}{}, nil
			}
		}
		return struct{}{}, perm(op, "backend %s has no member %q", be, mem)
	})
	return err
}

var replicationStatuses = map[string]bool{
	ferry.ReplicationEnabled: true, ferry.ReplicationDisabled: true, ferry.ReplicationFailingOver: true,
	ferry.ReplicationFailedOver: true, ferry.ReplicationFailoverErr: true, ferry.ReplicationError: true,
	ferry.ReplicationNotCapable: true,
}

// SetReplicationStatus records a backend's replication_status and
// active_backend_id.
func (c *Cloud) SetReplicationStatus(ctx context.Context, key, be, status, activeBackendID string) error {
	const op = "storage.set_replication_status"
	_, err := mutate(ctx, c, c.storageCall(op, key, be, nil), func(time.Time) (struct{}, error) {
		b, err := c.reachable(op, be)
		if err != nil {
			return struct{}{}, err
		}
		if !replicationStatuses[status] {
			return struct{}{}, perm(op, "unknown replication_status %q", status)
		}
		b.replStatus, b.activeID = status, activeBackendID
		return struct{}{}, nil
	})
	return err
}

func (c *Cloud) setFrozen(ctx context.Context, op, key, be string, frozen bool) error {
	_, err := mutate(ctx, c, c.storageCall(op, key, be, nil), func(time.Time) (struct{}, error) {
		b, err := c.reachable(op, be)
		if err != nil {
			return struct{}{}, err
		}
		b.frozen = frozen
		return struct{}{}, nil
	})
	return err
}

// Freeze stops management changes on a backend (Cinder's freeze_host).
func (c *Cloud) Freeze(ctx context.Context, key, be string) error {
	return c.setFrozen(ctx, "storage.freeze", key, be, true)
}

// Thaw undoes Freeze.
func (c *Cloud) Thaw(ctx context.Context, key, be string) error {
	return c.setFrozen(ctx, "storage.thaw", key, be, false)
}

// Fence cuts a backend off from writes. It is the one call that works on a
// down site: fencing is done out of band (power, BMC, revoking the storage
// link), precisely because the site may not answer, and an unplanned
// failover must fence before it promotes.
func (c *Cloud) Fence(ctx context.Context, key, be string, epoch int64) error {
	const op = "storage.fence"
	_, err := mutate(ctx, c, c.storageCall(op, key, be, nil), func(time.Time) (struct{}, error) {
		b, ok := c.backends[be]
		if !ok {
			return struct{}{}, perm(op, "unknown backend %q", be)
		}
		if b.fenced && epoch < b.epoch {
			return struct{}{}, perm(op, "backend %s is fenced under newer epoch %d", be, b.epoch)
		}
		b.fenced, b.epoch = true, epoch
		return struct{}{}, nil
	})
	return err
}

// Unfence lifts a fence, only under the epoch that set it.
func (c *Cloud) Unfence(ctx context.Context, key, be string, epoch int64) error {
	const op = "storage.unfence"
	_, err := mutate(ctx, c, c.storageCall(op, key, be, nil), func(time.Time) (struct{}, error) {
		b, err := c.reachable(op, be)
		if err != nil {
			return struct{}{}, err
		}
		if !b.fenced {
			return struct{}{}, nil
		}
		if b.epoch != epoch {
			return struct{}{}, perm(op, "backend %s is fenced under epoch %d, not %d", be, b.epoch, epoch)
		}
		b.fenced, b.epoch = false, 0
		return struct{}{}, nil
	})
	return err
}

// Resync makes the replicas on backend follow the current actives again,
// throwing away the writes they diverged with.
func (c *Cloud) Resync(ctx context.Context, key, be string, resources []string) (drivers.ResyncResult, error) {
	const op = "storage.resync"
	return mutate(ctx, c, c.storageCall(op, key, be, resources), func(time.Time) (drivers.ResyncResult, error) {
		res := drivers.ResyncResult{Discarded: map[string]int64{}}
		if _, err := c.reachable(op, be); err != nil {
			return res, err
		}
		rs, idx, err := c.replicasOn(op, be, resources)
		if err != nil {
			return res, err
		}
		for k, r := range rs {
			if idx[k] == r.active {
				return res, perm(op, "%s is active on %s: nothing to resync from", r.name, be)
			}
			src := r.replicas[r.active]
			if !c.linkUp(c.replicaSite(src), c.replicaSite(r.replicas[idx[k]])) {
				return res, unreachable(op, "%s: no link from %s to %s", r.name, src.backend, be)
			}
		}
		for k, r := range rs {
			rep, src := r.replicas[idx[k]], r.replicas[r.active]
			res.Discarded[r.name] = 0
			if rep.diverged {
				n := rep.seq() - rep.forkAt
				r.discarded += n
				res.Discarded[r.name] = n
				rep.diverged, rep.forkAt = false, 0
			}
			rep.log = append(rep.log[:0:0], src.log...)
		}
		return res, nil
	})
}

// TestFailoverStart clones each resource's replica on backend at its current
// applied point; replication carries on.
func (c *Cloud) TestFailoverStart(ctx context.Context, key, be string, resources []string) ([]string, error) {
	const op = "storage.test_failover_start"
	return mutate(ctx, c, c.storageCall(op, key, be, resources), func(time.Time) ([]string, error) {
		b, err := c.reachable(op, be)
		if err != nil {
			return nil, err
		}
		rs, idx, err := c.replicasOn(op, be, resources)
		if err != nil {
			return nil, err
		}
		ids := []string{}
		for k, r := range rs {
			cl := &clone{id: c.id("clone"), resource: r.name, backend: be, site: b.site, seq: r.replicas[idx[k]].seq()}
			c.clones[cl.id] = cl
			ids = append(ids, cl.id)
		}
		return ids, nil
	})
}

// TestFailoverStop deletes clones; unknown ids are already gone, which is
// what cleanup wants.
func (c *Cloud) TestFailoverStop(ctx context.Context, key, be string, clones []string) error {
	const op = "storage.test_failover_stop"
	_, err := mutate(ctx, c, c.storageCall(op, key, be, clones), func(time.Time) (struct{}, error) {
		if _, err := c.reachable(op, be); err != nil {
			return struct{}{}, err
		}
		for _, id := range clones {
			if cl, ok := c.clones[id]; ok && cl.backend == be {
				delete(c.clones, id)
			}
		}
		return struct{}{}, nil
	})
	return err
}
