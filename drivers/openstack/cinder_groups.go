package openstack

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

// Stubs until Cinder group replication (3.38+) is built: each says so with a Permanent error.

func (a *Adapter) groupDemote(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.demote"
	return notYet(op)
}

func (a *Adapter) groupDisableReplication(ctx context.Context, key, target string, resources []string) error {
	const op = "storage.disable_replication"
	return notYet(op)
}

func (a *Adapter) groupEnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	const op = "storage.enable_replication"
	return notYet(op)
}

func (a *Adapter) groupFence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.fence"
	return notYet(op)
}

func (a *Adapter) groupPromote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	const op = "storage.promote"
	return drivers.PromoteResult{}, notYet(op)
}

func (a *Adapter) groupResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.resume_replication"
	return notYet(op)
}

func (a *Adapter) groupResync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	const op = "storage.resync"
	return drivers.ResyncResult{}, notYet(op)
}

func (a *Adapter) groupSnapshot(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	const op = "storage.snapshot_group"
	return drivers.Snapshot{}, notYet(op)
}

func (a *Adapter) groupSuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.suspend_replication"
	return notYet(op)
}

func (a *Adapter) groupSync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.sync"
	return nil, notYet(op)
}

func (a *Adapter) groupTestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	const op = "storage.test_failover_start"
	return nil, notYet(op)
}

func (a *Adapter) groupTestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	const op = "storage.test_failover_stop"
	return notYet(op)
}

func (a *Adapter) groupUnfence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.unfence"
	return notYet(op)
}
