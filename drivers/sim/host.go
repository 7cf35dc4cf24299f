package sim

import (
	"context"
	"sort"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.HostFailover = (*Cloud)(nil)

// StatusError is a volume's status after a host failover left it behind
// (it is not replicated to the target), as Cinder sets it.
const StatusError = "error"

func init() {
	ops["storage.failover_host"] = func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.FailoverHost(ctx, q.Key, q.Backend, q.Target)
	}
	ops["sim.create_volume"] = func(_ context.Context, c *Cloud, q *request) (any, error) {
		return none(c.CreateVolume(q.Resource, q.Backend))
	}
}

// frozenAllowed are the mutating calls a frozen backend still takes: the
// ones that lift or extend the freeze, fence it, and do the bookkeeping of
// a failover (Cinder runs failover_host on a frozen service).
var frozenAllowed = map[string]bool{
	"storage.freeze":                 true,
	"storage.thaw":                   true,
	"storage.fence":                  true,
	"storage.unfence":                true,
	"storage.failover_completed":     true,
	"storage.set_replication_status": true,
	"storage.failover_host":          true,
}

// refuseFrozen refuses a mutating call aimed at a frozen backend. Cinder's
// freeze only stopped what went through its scheduler, so deletes still
// worked (bug 1616974); here the storage itself refuses every change,
// deletes included.
func (c *Cloud) refuseFrozen(cl call) error {
	if frozenAllowed[cl.op] {
		return nil
	}
	if b, ok := c.backends[cl.target]; ok && b.frozen {
		return perm(cl.op, "backend %s is frozen: thaw it first", b.name)
	}
	return nil
}

// CreateVolume adds a volume of a non-replicated type on backend, outside
// any protection group: what a host failover cannot take along.
func (c *Cloud) CreateVolume(name, be string) error {
	const op = "sim.create_volume"
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	c.materialize(now)
	if name == "" {
		return perm(op, "a name is required")
	}
	if _, ok := c.resources[name]; ok {
		return perm(op, "resource %q exists", name)
	}
	if _, ok := c.backends[be]; !ok {
		return perm(op, "unknown backend %q", be)
	}
	c.resources[name] = &resource{name: name, created: now, replicas: []*replica{{backend: be}}}
	return nil
}

// hostResources are the resources a backend holds: those created on it
// (their first replica) and those whose active replica it serves now.
func (c *Cloud) hostResources(be string) []*resource {
	var out []*resource
	for _, r := range c.resources {
		if r.replicas[0].backend == be || r.replicas[r.active].backend == be {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func replicaIndex(r *resource, be string) int {
	for i, rep := range r.replicas {
		if rep.backend == be {
			return i
		}
	}
	return -1
}

// FailoverHost is Cinder's failover_host at the storage. To a target id it
// promotes, at the target backend, every resource of the backend that is
// replicated there (forced when the backend's site is down, losing what the
// target had not applied; otherwise handing over every write first) and
// sets the others' status to error. "default" fails back: the resources'
// replicas on the backend become active again, handed every write by the
// current actives (or, if an operator demoted those and the link is down,
// with what they hold). A failover from one secondary to another is
// refused before anything changes, as is a target the backend does not
// replicate to. The backend's active_backend_id and replication_status
// follow.
func (c *Cloud) FailoverHost(ctx context.Context, key, be, targetID string) (drivers.HostFailoverResult, error) {
	const op = "storage.failover_host"
	return mutate(ctx, c, c.storageCall(op, key, be, nil, targetID), func(now time.Time) (drivers.HostFailoverResult, error) {
		b, ok := c.backends[be]
		if !ok {
			return drivers.HostFailoverResult{}, perm(op, "unknown backend %q", be)
		}
		if targetID == ferry.ActiveBackendDefault {
			return c.failback(op, b)
		}
		return c.failoverTo(op, b, targetID)
	})
}

func (c *Cloud) failoverTo(op string, b *backend, targetID string) (drivers.HostFailoverResult, error) {
	res := drivers.HostFailoverResult{Promoted: []drivers.PromotedPoint{}}
	var tgt *backend
	for _, t := range b.targets {
		if t.ID == targetID {
			tgt = c.backends[t.Backend]
		}
	}
	switch {
	case targetID == "":
		return res, perm(op, "a replication target id is required")
	case tgt == nil:
		return res, perm(op, "backend %s has no replication target %q", b.name, targetID)
	case b.activeID == targetID:
		return res, perm(op, "backend %s is already failed over to %q", b.name, targetID)
	case b.activeID != "" && b.activeID != ferry.ActiveBackendDefault:
		return res, perm(op, "backend %s is failed over to %q: a failover from one secondary to another is not supported; fail back to %q first",
			b.name, b.activeID, ferry.ActiveBackendDefault)
	case !c.siteUp(tgt.site):
		return res, unreachable(op, "target backend %s: site %s is down", tgt.name, tgt.site)
	}
	type move struct {
		r      *resource
		j      int
		forced bool
	}
	var moves []move
	for _, r := range c.hostResources(b.name) {
		j := replicaIndex(r, tgt.name)
		if j < 0 || r.replicas[j].diverged {
			res.Errored = append(res.Errored, r.name)
			continue
		}
		// Forced when the active cannot hand over its writes: its site is
		// down or cut off from the target.
		forced := !c.linkUp(c.replicaSite(r.replicas[r.active]), tgt.site)
		moves = append(moves, move{r, j, forced})
	}
	for _, m := range moves {
		res.Promoted = append(res.Promoted, c.takeOver(m.r, m.j, m.forced))
	}
	for _, n := range res.Errored {
		c.resources[n].status = StatusError
	}
	b.activeID, b.replStatus = targetID, ferry.ReplicationFailedOver
	return res, nil
}

func (c *Cloud) failback(op string, b *backend) (drivers.HostFailoverResult, error) {
	res := drivers.HostFailoverResult{Promoted: []drivers.PromotedPoint{}}
	if b.activeID == "" || b.activeID == ferry.ActiveBackendDefault {
		return res, perm(op, "backend %s is not failed over: nothing to fail back", b.name)
	}
	if !c.siteUp(b.site) {
		return res, unreachable(op, "backend %s: site %s is down", b.name, b.site)
	}
	type move struct {
		r      *resource
		i      int
		forced bool
	}
	var moves []move
	for _, r := range c.hostResources(b.name) {
		i := replicaIndex(r, b.name)
		if i < 0 {
			continue
		}
		if r.replicas[i].diverged {
			return res, perm(op, "%s on %s has diverged: resync it (reprotect) before failing back", r.name, b.name)
		}
		forced := false
		if old := r.replicas[r.active]; r.active != i && !c.linkUp(c.replicaSite(old), b.site) {
			if !r.demoted {
				return res, unreachable(op, "%s: failing back needs %s to hand over its writes, and it is unreachable; demote it to fail back without them",
					r.name, old.backend)
			}
			forced = true
		}
		moves = append(moves, move{r, i, forced})
	}
	for _, m := range moves {
		res.Promoted = append(res.Promoted, c.takeOver(m.r, m.i, m.forced))
		m.r.status = ""
	}
	b.activeID, b.replStatus = "", ferry.ReplicationEnabled
	return res, nil
}

// takeOver makes replica j of r the active one. Unforced, the old active's
// writes reach it first and the old active follows it as a secondary;
// forced, it keeps what it applied, the writes it lacks are counted lost
// and every replica ahead of it (the old active in any case) is marked
// diverged until a resync. The same rules as Promote.
func (c *Cloud) takeOver(r *resource, j int, forced bool) drivers.PromotedPoint {
	nw := r.replicas[j]
	if j == r.active {
		r.demoted = false
		return drivers.PromotedPoint{Resource: r.name, Seq: nw.seq(), At: r.lastAt(nw)}
	}
	old := r.replicas[r.active]
	if !forced {
		nw.log = append(nw.log[:0:0], old.log...)
	}
	pt := drivers.PromotedPoint{Resource: r.name, Seq: nw.seq(), At: r.lastAt(nw)}
	if lost := old.seq() - nw.seq(); lost > 0 {
		pt.LostWrites = lost
		pt.DataLoss = r.lastAt(old).Sub(pt.At)
		r.lost += lost
	}
	for i, rep := range r.replicas {
		if i == j {
			continue
		}
		if (i == r.active && forced) || rep.seq() > nw.seq() {
			if !rep.diverged || rep.forkAt > nw.seq() {
				rep.forkAt = min(rep.seq(), nw.seq())
			}
			rep.diverged = true
		}
	}
	r.active, r.demoted = j, false
	return pt
}
