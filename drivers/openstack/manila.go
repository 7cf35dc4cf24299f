package openstack

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

// Stubs until Manila share replication is built: each says so with a Permanent error.

func (a *Adapter) manilaBackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	const op = "storage.backend_status"
	return drivers.BackendStatus{}, notYet(op)
}

func (a *Adapter) manilaCapabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	const op = "storage.capabilities"
	return drivers.Capabilities{}, notYet(op)
}

func (a *Adapter) manilaDemote(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.demote"
	return notYet(op)
}

func (a *Adapter) manilaDisableReplication(ctx context.Context, key, target string, resources []string) error {
	const op = "storage.disable_replication"
	return notYet(op)
}

func (a *Adapter) manilaEnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	const op = "storage.enable_replication"
	return notYet(op)
}

func (a *Adapter) manilaFailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	const op = "storage.failover_completed"
	return notYet(op)
}

func (a *Adapter) manilaFence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.fence"
	return notYet(op)
}

func (a *Adapter) manilaFreeze(ctx context.Context, key, backend string) error {
	const op = "storage.freeze"
	return notYet(op)
}

func (a *Adapter) manilaPromote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	const op = "storage.promote"
	return drivers.PromoteResult{}, notYet(op)
}

func (a *Adapter) manilaResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.resume_replication"
	return notYet(op)
}

func (a *Adapter) manilaResync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	const op = "storage.resync"
	return drivers.ResyncResult{}, notYet(op)
}

func (a *Adapter) manilaSetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	const op = "storage.set_replication_status"
	return notYet(op)
}

func (a *Adapter) manilaSnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	const op = "storage.snapshot_group"
	return drivers.Snapshot{}, notYet(op)
}

func (a *Adapter) manilaSuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.suspend_replication"
	return notYet(op)
}

func (a *Adapter) manilaSync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.sync"
	return nil, notYet(op)
}

func (a *Adapter) manilaTestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	const op = "storage.test_failover_start"
	return nil, notYet(op)
}

func (a *Adapter) manilaTestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	const op = "storage.test_failover_stop"
	return notYet(op)
}

func (a *Adapter) manilaThaw(ctx context.Context, key, backend string) error {
	const op = "storage.thaw"
	return notYet(op)
}

func (a *Adapter) manilaUnfence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.unfence"
	return notYet(op)
}

func (a *Adapter) manilaReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, []string, error) {
	return nil, resources, nil
}

func notYet(op string) error {
	return drivers.Errorf(drivers.Permanent, op, "the openstack adapter does not do this yet")
}
