package openstack

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

// The storage calls below act on a group of volumes (Cinder's group
// replication: enable, disable, failover_replication, 3.38+) or on clones
// for drills. They are not wired to Cinder yet; each says so with a
// Permanent error, so a run stops at once instead of half way.

func notYet(op string) error {
	return drivers.Errorf(drivers.Permanent, op, "the openstack adapter does not do this for Cinder yet (needs group replication, microversion 3.38+)")
}

// SnapshotGroup is not wired to Cinder yet.
func (a *Adapter) SnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	return drivers.Snapshot{}, notYet("storage.snapshot_group")
}

// Sync is not wired to Cinder yet.
func (a *Adapter) Sync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	return nil, notYet("storage.sync")
}

// Demote is not wired to Cinder yet.
func (a *Adapter) Demote(ctx context.Context, key, backend string, resources []string) error {
	return notYet("storage.demote")
}

// Promote is not wired to Cinder yet (failover_replication of a group).
func (a *Adapter) Promote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	return drivers.PromoteResult{}, notYet("storage.promote")
}

// Fence is not wired to Cinder yet.
func (a *Adapter) Fence(ctx context.Context, key, backend string, epoch int64) error {
	return notYet("storage.fence")
}

// Unfence is not wired to Cinder yet.
func (a *Adapter) Unfence(ctx context.Context, key, backend string, epoch int64) error {
	return notYet("storage.unfence")
}

// Resync is not wired to Cinder yet.
func (a *Adapter) Resync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	return drivers.ResyncResult{}, notYet("storage.resync")
}

// TestFailoverStart is not wired to Cinder yet.
func (a *Adapter) TestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	return nil, notYet("storage.test_failover_start")
}

// TestFailoverStop is not wired to Cinder yet.
func (a *Adapter) TestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	return notYet("storage.test_failover_stop")
}
