// Package sim is Ferry's simulator: a simulated multi-site cloud with
// replicated storage, servers, networks, a DNS zone and verification checks.
// It is NOT a real cloud and never touches one. It exists so a new user sees
// real runs at once and tests can drive every path, including the ones a real
// cloud makes hard to reach (a site that vanishes, a partition, a cluster
// member that never acknowledges, a forced promote that loses writes).
//
// The model lives in Cloud. NewHandler serves it as a JSON HTTP API (so
// `ferry sim` can keep the cloud's state while workers die and restart), and
// Client implements the driver ports over that API, either against a remote
// process (NewClient) or in the same process (NewInProcess); both share one
// code path so tests of one hold for the other.
package sim

import (
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// Options configure a Cloud.
type Options struct {
	// Now is the clock; tests replace it to control replication lag and
	// boot times. Default time.Now.
	Now func() time.Time
	// DefaultLag is every backend's replication lag until SetLag changes it.
	DefaultLag time.Duration
	// BootTime is how long a booted or started server stays "booting".
	BootTime time.Duration
	// WorkloadInterval is how often the background workload writes; 0 means
	// no background writes.
	WorkloadInterval time.Duration
	// OpLatency delays every call of the named port operations (e.g.
	// "storage.promote", "compute.health", "dns.replace", "verify.check")
	// by a fixed time before it runs: the latency model of `make bench`.
	// Unlike a latency Fault it is not consumed, matches no target and adds
	// to any fault's latency.
	OpLatency map[string]time.Duration
}

// Fault makes matching operations fail or slow down.
type Fault struct {
	// Op is the port operation, e.g. "storage.promote"; "" matches any.
	Op string `json:"op,omitempty"`
	// Target is a backend, member, server, site, resource or record name;
	// "" matches any.
	Target string `json:"target,omitempty"`
	// Times is how many matching calls the fault hits; 0 means every call.
	Times int `json:"times,omitempty"`
	// Kind is the drivers error kind to fail with (default Retryable). A
	// fault with Latency and no Kind only delays the call, so slowness can be
	// modelled without failure.
	Kind string `json:"kind,omitempty"`
	// Latency is added before the call runs; the caller's context cancels it.
	Latency time.Duration `json:"latency,omitempty"`
}

// Ledger outcomes.
const (
	OutcomeApplied  = "applied"
	OutcomeReplayed = "replayed"
	OutcomeFailed   = "failed"
)

// LedgerEntry is one mutating call as the simulator saw it. Target is the
// backend (storage), "backend/member" (failover_completed), site (compute,
// network) or record name (dns).
type LedgerEntry struct {
	Seq     int64     `json:"seq"`
	Key     string    `json:"key"`
	Op      string    `json:"op"`
	Target  string    `json:"target"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
}

// State is the simulated cloud's stable, time-independent state, sorted so
// two States compare equal exactly when the cloud is the same.
type State struct {
	Sites     []SiteState      `json:"sites"`
	Backends  []BackendState   `json:"backends"`
	Resources []ResourceState  `json:"resources"`
	Servers   []ServerState    `json:"servers"`
	Networks  []NetworkState   `json:"networks"`
	Bubbles   []BubbleState    `json:"bubbles"`
	Clones    []CloneState     `json:"clones"`
	Records   []drivers.Record `json:"records"`
}

// SiteState is one site.
type SiteState struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// BackendState is one backend's replication bookkeeping.
type BackendState struct {
	Name              string        `json:"name"`
	Site              string        `json:"site"`
	ReplicationStatus string        `json:"replication_status"`
	ActiveBackendID   string        `json:"active_backend_id"`
	Frozen            bool          `json:"frozen"`
	Fenced            bool          `json:"fenced"`
	Members           []MemberState `json:"members"`
}

// MemberState is one cluster member's idea of the active backend.
type MemberState struct {
	Name            string `json:"name"`
	ActiveBackendID string `json:"active_backend_id"`
}

// ResourceState is one volume or share and its replicas, sorted by site.
type ResourceState struct {
	Name string `json:"name"`
	// Status is "error" when a host failover left the resource behind.
	Status   string         `json:"status,omitempty"`
	Replicas []ReplicaState `json:"replicas"`
}

// Replica roles.
const (
	RoleActive    = "active"
	RoleSecondary = "secondary"
)

// ReplicaState is one replica's role. A demoted active reports as a
// read-only secondary.
type ReplicaState struct {
	Site     string `json:"site"`
	Backend  string `json:"backend"`
	Role     string `json:"role"`
	Writable bool   `json:"writable"`
	Diverged bool   `json:"diverged"`
}

// ServerState is one server at one site.
type ServerState struct {
	Site     string `json:"site"`
	Name     string `json:"name"`
	State    string `json:"state"`
	Quiesced bool   `json:"quiesced"`
}

// NetworkState is one network at one site.
type NetworkState struct {
	Site string `json:"site"`
	Name string `json:"name"`
}

// BubbleState is one isolated test network.
type BubbleState struct {
	ID   string `json:"id"`
	Site string `json:"site"`
	Name string `json:"name"`
}

// CloneState is one test-failover clone.
type CloneState struct {
	ID       string `json:"id"`
	Resource string `json:"resource"`
	Backend  string `json:"backend"`
	Seq      int64  `json:"seq"`
}

// ResourceInfo is the truth about one resource's writes, for tests to hold
// the storage's reports against.
type ResourceInfo struct {
	Name          string `json:"name"`
	ActiveSite    string `json:"active_site"`
	ActiveBackend string `json:"active_backend"`
	ActiveSeq     int64  `json:"active_seq"`
	// Replicas hold each replica's applied seq, at the time of the call.
	Replicas []ReplicaInfo `json:"replicas"`
	// LostWrites sums, over every promote, the writes the previous active had
	// that the new one lacked.
	LostWrites int64 `json:"lost_writes"`
	// DiscardedWrites sums the diverged writes Resync threw away.
	DiscardedWrites int64 `json:"discarded_writes"`
	// Status is "error" when a host failover left the resource behind.
	Status string `json:"status,omitempty"`
}

// ReplicaInfo is one replica's applied point.
type ReplicaInfo struct {
	Site     string `json:"site"`
	Backend  string `json:"backend"`
	Seq      int64  `json:"seq"`
	State    string `json:"replica_state"`
	Diverged bool   `json:"diverged"`
}
