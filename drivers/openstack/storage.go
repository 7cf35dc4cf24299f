package openstack

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

// The storage port, routed by what each backend is: a Manila share backend
// (manila.go), a Cinder replication target or a Cinder backend's volume
// groups (cinder_groups.go), or a cinder-volume service (cinder.go). A call
// OpenStack has no equivalent for says so with a Permanent error naming the
// backend, so a run stops at once with the reason instead of half way.

var (
	_ drivers.MemberVerifier = (*Adapter)(nil)
	_ drivers.Storage        = (*Adapter)(nil)
	_ drivers.Replication    = (*Adapter)(nil)
	_ drivers.HostFailover   = (*Adapter)(nil)
)

// isShare says whether a configured backend is Manila's; an unknown
// backend is left to the Cinder paths, which name it in their error.
func (a *Adapter) isShare(backend string) bool {
	b, ok := a.cfg.Backends[backend]
	return ok && b.share()
}

// hasShares says whether any Manila backend is configured.
func (a *Adapter) hasShares() bool {
	for _, b := range a.cfg.Backends {
		if b.share() {
			return true
		}
	}
	return false
}

// Capabilities says what the backend can do at the negotiated microversion.
func (a *Adapter) Capabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	if a.isShare(backend) {
		return a.manilaCapabilities(ctx, backend)
	}
	return a.cinderCapabilities(ctx, backend)
}

// BackendStatus reads a backend as its service shows it.
func (a *Adapter) BackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	if a.isShare(backend) {
		return a.manilaBackendStatus(ctx, backend)
	}
	return a.cinderBackendStatus(ctx, backend)
}

// ReplicationStatus reports the replicas of shares (Manila) and volumes
// (Cinder): names Manila knows are shares, the rest volumes.
func (a *Adapter) ReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, error) {
	var out []drivers.ReplicaStatus
	rest := resources
	if a.hasShares() {
		var err error
		out, rest, err = a.manilaReplicationStatus(ctx, resources)
		if err != nil {
			return nil, err
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	vols, err := a.cinderReplicationStatus(ctx, rest)
	if err != nil {
		return nil, err
	}
	return append(out, vols...), nil
}

// SnapshotGroup takes a consistent snapshot of the resources on backend.
func (a *Adapter) SnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	if a.isShare(backend) {
		return a.manilaSnapshotGroup(ctx, key, backend, resources)
	}
	return a.groupSnapshot(ctx, key, backend, resources)
}

// Sync replicates once from backend and reports the replicas.
func (a *Adapter) Sync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	if a.isShare(backend) {
		return a.manilaSync(ctx, key, backend, resources)
	}
	return a.groupSync(ctx, key, backend, resources)
}

// Demote makes the resources' replicas on backend secondaries.
func (a *Adapter) Demote(ctx context.Context, key, backend string, resources []string) error {
	if a.isShare(backend) {
		return a.manilaDemote(ctx, key, backend, resources)
	}
	return a.groupDemote(ctx, key, backend, resources)
}

// Promote makes the resources' replicas on backend the active ones.
func (a *Adapter) Promote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	if a.isShare(backend) {
		return a.manilaPromote(ctx, key, backend, resources, force)
	}
	return a.groupPromote(ctx, key, backend, resources, force)
}

// VerifiesMembers: every FailoverCompleted path checks its member itself
// (Cinder's active_backend_id after a host failover, the member's service
// after a group failover or a Manila promote).
func (a *Adapter) VerifiesMembers() bool { return true }

// FailoverCompleted tells one member of a Cinder cluster that the backend
// moved. Manila has no such step (a promote is one call).
func (a *Adapter) FailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	if a.isShare(backend) {
		return a.manilaFailoverCompleted(ctx, key, backend, member, activeBackendID)
	}
	return a.cinderFailoverCompleted(ctx, key, backend, member, activeBackendID)
}

// SetReplicationStatus checks a Cinder backend's replication_status (Cinder
// keeps it itself).
func (a *Adapter) SetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	if a.isShare(backend) {
		return a.manilaSetReplicationStatus(ctx, key, backend, status, activeBackendID)
	}
	return a.cinderSetReplicationStatus(ctx, key, backend, status, activeBackendID)
}

// Freeze freezes a backend's control plane.
func (a *Adapter) Freeze(ctx context.Context, key, backend string) error {
	if a.isShare(backend) {
		return a.manilaFreeze(ctx, key, backend)
	}
	return a.cinderFreeze(ctx, key, backend)
}

// Thaw undoes Freeze.
func (a *Adapter) Thaw(ctx context.Context, key, backend string) error {
	if a.isShare(backend) {
		return a.manilaThaw(ctx, key, backend)
	}
	return a.cinderThaw(ctx, key, backend)
}

// Fence cuts backend off from writes under epoch.
func (a *Adapter) Fence(ctx context.Context, key, backend string, epoch int64) error {
	if a.isShare(backend) {
		return a.manilaFence(ctx, key, backend, epoch)
	}
	return a.groupFence(ctx, key, backend, epoch)
}

// Unfence undoes Fence under the same epoch.
func (a *Adapter) Unfence(ctx context.Context, key, backend string, epoch int64) error {
	if a.isShare(backend) {
		return a.manilaUnfence(ctx, key, backend, epoch)
	}
	return a.groupUnfence(ctx, key, backend, epoch)
}

// Resync makes the replicas on backend secondaries of the actives again.
func (a *Adapter) Resync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	if a.isShare(backend) {
		return a.manilaResync(ctx, key, backend, resources)
	}
	return a.groupResync(ctx, key, backend, resources)
}

// TestFailoverStart clones the resources' replicas on backend for a drill.
func (a *Adapter) TestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	if a.isShare(backend) {
		return a.manilaTestFailoverStart(ctx, key, backend, resources)
	}
	return a.groupTestFailoverStart(ctx, key, backend, resources)
}

// TestFailoverStop removes a drill's clones.
func (a *Adapter) TestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	if a.isShare(backend) {
		return a.manilaTestFailoverStop(ctx, key, backend, clones)
	}
	return a.groupTestFailoverStop(ctx, key, backend, clones)
}

// EnableReplication creates replicas on target of the resources active on
// backend.
func (a *Adapter) EnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	if a.isShare(backend) {
		return a.manilaEnableReplication(ctx, key, backend, target, resources)
	}
	return a.groupEnableReplication(ctx, key, backend, target, resources)
}

// DisableReplication removes the resources' replicas on target.
func (a *Adapter) DisableReplication(ctx context.Context, key, target string, resources []string) error {
	if a.isShare(target) {
		return a.manilaDisableReplication(ctx, key, target, resources)
	}
	return a.groupDisableReplication(ctx, key, target, resources)
}

// SuspendReplication pauses shipping writes from backend.
func (a *Adapter) SuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	if a.isShare(backend) {
		return a.manilaSuspendReplication(ctx, key, backend, resources)
	}
	return a.groupSuspendReplication(ctx, key, backend, resources)
}

// ResumeReplication starts shipping again.
func (a *Adapter) ResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	if a.isShare(backend) {
		return a.manilaResumeReplication(ctx, key, backend, resources)
	}
	return a.groupResumeReplication(ctx, key, backend, resources)
}
