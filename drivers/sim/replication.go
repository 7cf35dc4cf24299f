package sim

import (
	"context"
	"slices"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// The replication lifecycle: Manila's create/delete replica and Cinder's
// enable/disable group replication, and suspending the shipping of writes
// for maintenance (use case 2e). Suspension is kept per resource: while it
// holds, materialize applies nothing to the resource's secondaries, whose
// lag (and so replica_state) keeps growing with the active's writes.

var _ drivers.Replication = (*Cloud)(nil)

func init() {
	ops["storage.enable_replication"] = func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.EnableReplication(ctx, q.Key, q.Backend, q.Target, q.Resources))
	}
	ops["storage.disable_replication"] = func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.DisableReplication(ctx, q.Key, q.Target, q.Resources))
	}
	ops["storage.suspend_replication"] = func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.SuspendReplication(ctx, q.Key, q.Backend, q.Resources))
	}
	ops["storage.resume_replication"] = func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.ResumeReplication(ctx, q.Key, q.Backend, q.Resources))
	}
}

// EnableReplication creates, for each resource active on backend, a replica
// on target (one of backend's replication targets) and starts replicating
// into it; the new replica fills per the link's lag like any secondary. A
// replica that exists on target is left as it is.
func (c *Cloud) EnableReplication(ctx context.Context, key, be, target string, resources []string) error {
	const op = "storage.enable_replication"
	_, err := mutate(ctx, c, c.storageCall(op, key, be, resources, target), func(time.Time) (struct{}, error) {
		src, err := c.reachable(op, be)
		if err != nil {
			return struct{}{}, err
		}
		if _, err := c.reachable(op, target); err != nil {
			return struct{}{}, err
		}
		if !slices.ContainsFunc(src.targets, func(t ferry.ReplicationTarget) bool { return t.Backend == target }) {
			return struct{}{}, perm(op, "backend %s does not replicate to %s (not one of its replication targets)", be, target)
		}
		rs, err := c.activeOn(op, be, resources)
		if err != nil {
			return struct{}{}, err
		}
		for _, r := range rs {
			if !slices.ContainsFunc(r.replicas, func(rep *replica) bool { return rep.backend == target }) {
				r.replicas = append(r.replicas, &replica{backend: target})
			}
		}
		return struct{}{}, nil
	})
	return err
}

// DisableReplication removes the resources' replicas on target. An active
// replica is refused (fail over first); a resource without a replica on
// target is already done.
func (c *Cloud) DisableReplication(ctx context.Context, key, target string, resources []string) error {
	const op = "storage.disable_replication"
	_, err := mutate(ctx, c, c.storageCall(op, key, target, resources), func(time.Time) (struct{}, error) {
		if _, err := c.reachable(op, target); err != nil {
			return struct{}{}, err
		}
		for _, n := range resources {
			r, ok := c.resources[n]
			if !ok {
				return struct{}{}, perm(op, "unknown resource %q", n)
			}
			if r.replicas[r.active].backend == target {
				return struct{}{}, perm(op, "%s is active on %s: its active replica cannot be removed", n, target)
			}
		}
		for _, n := range resources {
			r := c.resources[n]
			active := r.replicas[r.active]
			r.replicas = slices.DeleteFunc(r.replicas, func(rep *replica) bool { return rep.backend == target })
			r.active = slices.Index(r.replicas, active)
			if len(r.replicas) == 1 {
				r.suspended = false
			}
		}
		return struct{}{}, nil
	})
	return err
}

// SuspendReplication stops shipping writes from the resources' active
// replicas on backend: the secondaries keep what they hold and fall behind.
func (c *Cloud) SuspendReplication(ctx context.Context, key, be string, resources []string) error {
	return c.setSuspended(ctx, "storage.suspend_replication", key, be, resources, true)
}

// ResumeReplication ships again: the secondaries catch up per the link's lag.
func (c *Cloud) ResumeReplication(ctx context.Context, key, be string, resources []string) error {
	return c.setSuspended(ctx, "storage.resume_replication", key, be, resources, false)
}

func (c *Cloud) setSuspended(ctx context.Context, op, key, be string, resources []string, suspended bool) error {
	_, err := mutate(ctx, c, c.storageCall(op, key, be, resources), func(time.Time) (struct{}, error) {
		if _, err := c.reachable(op, be); err != nil {
			return struct{}{}, err
		}
		// mutate has materialized the secondaries up to now, so suspending
		// keeps what they applied and resuming applies from here on.
		rs, err := c.activeOn(op, be, resources)
		if err != nil {
			return struct{}{}, err
		}
		for _, r := range rs {
			r.suspended = suspended
		}
		return struct{}{}, nil
	})
	return err
}
