// Package drivers holds the ports through which activities act on a cloud:
// storage, compute, network, DNS and verification. It imports no adapter;
// each adapter (drivers/sim, drivers/postgres, drivers/openstack, ...) imports
// this package and its own library.
//
// Every mutating call carries an idempotency key (run id + step + resource):
// an adapter that sees a key again must not apply the change twice, and
// returns the result of the first call.
package drivers

import (
	"context"
	"time"
)

// Capabilities says what a storage backend can do.
type Capabilities struct {
	Replication      bool `json:"replication"`
	ConsistencyGroup bool `json:"consistency_group"`
	Freeze           bool `json:"freeze"`
	Fence            bool `json:"fence"`
	TestFailover     bool `json:"test_failover"`
	// ReportsLostWrites: Promote can tell exactly how many writes a forced
	// promote lost (the simulator can; real storage usually only knows times).
	ReportsLostWrites bool `json:"reports_lost_writes"`
}

// ReplicaStatus is one replica of a resource (volume or share) as a backend
// reports it.
type ReplicaStatus struct {
	Resource string `json:"resource"`
	Site     string `json:"site"`
	Backend  string `json:"backend"`
	State    string `json:"replica_state"` // ferry.Replica*
	// LastConsistent is the newest point in time this replica holds
	// consistently; Seq is the write sequence number at that point.
	LastConsistent time.Time     `json:"last_consistent"`
	Seq            int64         `json:"seq"`
	Lag            time.Duration `json:"lag"`
	// Suspended: shipping writes to this replica is paused for maintenance
	// (the lag grows on purpose).
	Suspended bool `json:"suspended,omitempty"`
}

// BackendStatus is a backend's replication state, as Cinder keeps it per
// service and per cluster.
type BackendStatus struct {
	Backend           string         `json:"backend"`
	Site              string         `json:"site"`
	Reachable         bool           `json:"reachable"`
	ReplicationStatus string         `json:"replication_status"`
	ActiveBackendID   string         `json:"active_backend_id"`
	Frozen            bool           `json:"frozen"`
	Fenced            bool           `json:"fenced"`
	FenceEpoch        int64          `json:"fence_epoch,omitempty"`
	Members           []MemberStatus `json:"members"`
}

// MemberStatus is one active-active cluster member's view of its backend.
type MemberStatus struct {
	Name            string `json:"name"`
	ActiveBackendID string `json:"active_backend_id"`
	Up              bool   `json:"up"`
}

// Snapshot is a consistency-group snapshot taken on the primary: for each
// resource, the write sequence it holds.
type Snapshot struct {
	ID    string           `json:"id"`
	Taken time.Time        `json:"taken"`
	Seqs  map[string]int64 `json:"seqs"`
}

// PromoteResult tells, per resource, which point the new active replica
// holds, and what the promote lost relative to the old primary's last write.
type PromoteResult struct {
	Points []PromotedPoint `json:"points"`
}

// PromotedPoint is one promoted resource.
type PromotedPoint struct {
	Resource string    `json:"resource"`
	Seq      int64     `json:"seq"`
	At       time.Time `json:"at"`
	// LostWrites is how many writes the old primary had that the promoted
	// replica lacks; -1 if the adapter cannot tell. DataLoss is the time
	// between the old primary's last write and the promoted point (0 when
	// nothing was lost).
	LostWrites int64         `json:"lost_writes"`
	DataLoss   time.Duration `json:"data_loss"`
}

// Storage is the storage port: Cinder's and Manila's replication driver
// methods, VMware SRA's command set, CSI-Addons' volume replication.
// Resources are named by the group's volume and share names; backend is the
// backend a call is sent to.
type Storage interface {
	Capabilities(ctx context.Context, backend string) (Capabilities, error)
	BackendStatus(ctx context.Context, backend string) (BackendStatus, error)
	// ReplicationStatus reports every replica of the given resources.
	ReplicationStatus(ctx context.Context, resources []string) ([]ReplicaStatus, error)

	// SnapshotGroup takes a consistency-group snapshot of resources on their
	// primary backend.
	SnapshotGroup(ctx context.Context, key, backend string, resources []string) (Snapshot, error)
	// Sync replicates once, now, from backend to its target and returns the
	// replicas' status afterwards.
	Sync(ctx context.Context, key, backend string, resources []string) ([]ReplicaStatus, error)
	// Demote makes the resources' replicas on backend read-only secondaries.
	Demote(ctx context.Context, key, backend string, resources []string) error
	// Promote makes the resources' replicas on backend the active ones. force
	// promotes even if the old primary is unreachable (unplanned failover).
	Promote(ctx context.Context, key, backend string, resources []string, force bool) (PromoteResult, error)
	// FailoverCompleted tells one cluster member of backend that the backend
	// now serves activeBackendID (Cinder's failover_completed).
	FailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error
	// SetReplicationStatus records the backend's replication_status and
	// active_backend_id (Cinder's failover_host bookkeeping).
	SetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error
	Freeze(ctx context.Context, key, backend string) error
	Thaw(ctx context.Context, key, backend string) error
	// Fence cuts backend off from writes under a fencing epoch; a fenced
	// backend accepts no writes until it is unfenced with the same epoch.
	Fence(ctx context.Context, key, backend string, epoch int64) error
	Unfence(ctx context.Context, key, backend string, epoch int64) error
	// Resync makes the replicas on backend secondaries of the current actives
	// and starts replicating into them, discarding what they had that the
	// actives lack, and says how many writes that was. Used by reprotect.
	Resync(ctx context.Context, key, backend string, resources []string) (ResyncResult, error)
	// TestFailoverStart clones the latest consistent point of each resource's
	// replica on backend, leaving replication running; it returns clone ids.
	TestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error)
	TestFailoverStop(ctx context.Context, key, backend string, clones []string) error
}

// MemberVerifier is implemented by storage adapters whose FailoverCompleted
// returns nil only once the member's acknowledgement is confirmed in the
// storage's own terms, and whose members do not all keep an
// active_backend_id to read back (Cinder's group failover moves no
// service; Manila has no per-member state). The failover_completed step
// then trusts FailoverCompleted instead of reading BackendStatus back.
type MemberVerifier interface {
	VerifiesMembers() bool
}

// ResyncResult counts, per resource, the writes a resync discarded: what a
// returning old primary held that nobody replicated.
type ResyncResult struct {
	Discarded map[string]int64 `json:"discarded"`
}

// Replication is the replication lifecycle of a storage adapter: establish
// and remove replicas (Manila's create/delete replica, Cinder's enable and
// disable group replication) and pause shipping writes for maintenance. An
// adapter that cannot do it does not implement it.
type Replication interface {
	// EnableReplication creates a replica on target of each resource active
	// on backend and starts replicating into it. A replica that exists is
	// left as it is.
	EnableReplication(ctx context.Context, key, backend, target string, resources []string) error
	// DisableReplication removes the resources' replicas on target; the
	// active replicas are untouched.
	DisableReplication(ctx context.Context, key, target string, resources []string) error
	// SuspendReplication stops shipping writes from the resources' active
	// replicas on backend; the secondaries fall behind.
	SuspendReplication(ctx context.Context, key, backend string, resources []string) error
	// ResumeReplication starts shipping again; the secondaries catch up.
	ResumeReplication(ctx context.Context, key, backend string, resources []string) error
}

// HostFailoverResult is what a whole-backend failover did at the storage.
type HostFailoverResult struct {
	// Promoted are the replicated resources now active at the target.
	Promoted []PromotedPoint `json:"promoted"`
	// Errored are resources of the backend that are not replicated to the
	// target: they go to status error, as in Cinder.
	Errored []string `json:"errored,omitempty"`
}

// HostFailover is Cinder's failover_host at the storage: fail a whole
// backend over to one of its replication targets ("default" fails back).
type HostFailover interface {
	FailoverHost(ctx context.Context, key, backend, targetID string) (HostFailoverResult, error)
}

// ServerHealth is one server's state at a site.
type ServerHealth struct {
	Name    string `json:"name"`
	Site    string `json:"site"`
	State   string `json:"state"` // absent, stopped, booting, running, error
	Healthy bool   `json:"healthy"`
}

// Server states.
const (
	ServerAbsent  = "absent"
	ServerStopped = "stopped"
	ServerBooting = "booting"
	ServerRunning = "running"
	ServerError   = "error"
)

// BootSpec is one server to boot at a site: its volumes (now active there)
// and the site-local networks it attaches to.
type BootSpec struct {
	Name     string   `json:"name"`
	Volumes  []string `json:"volumes,omitempty"`
	Networks []string `json:"networks,omitempty"`
}

// Compute is the compute port (Nova and the guest agent).
type Compute interface {
	// Quiesce freezes guest file systems (fsfreeze/VSS) on the servers.
	Quiesce(ctx context.Context, key, site string, servers []string) error
	Unquiesce(ctx context.Context, key, site string, servers []string) error
	Stop(ctx context.Context, key, site string, servers []string) error
	// Start starts stopped servers again where they are (compensation).
	Start(ctx context.Context, key, site string, servers []string) error
	// Boot creates and starts servers at site; it returns once they are
	// booting, not healthy: Health tells when they are.
	Boot(ctx context.Context, key, site string, servers []BootSpec) error
	Health(ctx context.Context, site string, servers []string) ([]ServerHealth, error)
}

// Network is the network port (Neutron).
type Network interface {
	// MapNetworks makes sure each DR network of the mappings exists at site,
	// with the production network's addressing.
	MapNetworks(ctx context.Context, key, site string, mappings []NetworkMapping) error
	CreateBubble(ctx context.Context, key, site, name string) (string, error)
	DestroyBubble(ctx context.Context, key, site, id string) error
}

// NetworkMapping maps a production network to a network at the DR site.
type NetworkMapping struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Record is a DNS record.
type Record struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	TTL   int    `json:"ttl"`
	Value string `json:"value"`
}

// DNS is the DNS port (Designate, RFC 2136).
type DNS interface {
	Get(ctx context.Context, name, typ string) (Record, error)
	Replace(ctx context.Context, key string, r Record) error
}

// CheckResult is one verification check's outcome.
type CheckResult struct {
	Name    string        `json:"name"`
	Passed  bool          `json:"passed"`
	Detail  string        `json:"detail,omitempty"`
	Elapsed time.Duration `json:"elapsed"`
}

// CheckSpec is a check to run; it mirrors ferry.Check.
type CheckSpec struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Target string `json:"target"`
	Expect string `json:"expect,omitempty"`
}

// Verify is the verification port: checks run from a network at a site.
type Verify interface {
	Check(ctx context.Context, site, network string, c CheckSpec) (CheckResult, error)
}

// Set is the drivers one worker uses. Replication and Host are optional
// capabilities: nil when the adapter cannot do them.
type Set struct {
	Storage     Storage
	Replication Replication
	Host        HostFailover
	Compute     Compute
	Network     Network
	DNS         DNS
	Verify      Verify
}
