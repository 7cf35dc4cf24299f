// Package router composes adapters, so that one worker can drive groups
// that live on different kinds of storage (the simulator's volumes beside a
// real PostgreSQL cluster), repoint records on more than one DNS server,
// and run each verification check where it can be run:
//
//   - Storage sends each storage call to the adapter that owns the backend
//     it names, and splits ReplicationStatus by the adapter that owns each
//     resource. It also implements drivers.Replication and
//     drivers.HostFailover, for the adapters that can.
//   - Tee writes every DNS record to several zones (the real server first)
//     and reads it back from all of them.
//   - Verify sends each check to the adapter registered for its type and
//     target.
//
// The router adds no state and no ledger of its own: every call lands on
// exactly one adapter (or, for the Tee, on each zone in turn) with the
// caller's idempotency key, so each adapter's own ledger keeps its
// exactly-once promise.
package router

import (
	"context"
	"fmt"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

var (
	_ drivers.Storage      = (*Storage)(nil)
	_ drivers.Replication  = (*Storage)(nil)
	_ drivers.HostFailover = (*Storage)(nil)
)

// Adapter is one storage adapter with the optional capabilities it has.
type Adapter struct {
	Name        string // for errors: "sim", "postgres", ...
	Storage     drivers.Storage
	Replication drivers.Replication // nil: it cannot manage replication
	Host        drivers.HostFailover
}

// Of is the storage part of a drivers.Set as an Adapter.
func Of(name string, set drivers.Set) Adapter {
	return Adapter{Name: name, Storage: set.Storage, Replication: set.Replication, Host: set.Host}
}

// Storage routes each storage call to the adapter owning the backend it
// names: one added with Add, else the fallback. A backend or resource
// nobody owns, with no fallback, is a Permanent error.
type Storage struct {
	fallback  *Adapter
	adapters  []*Adapter
	backends  map[string]*Adapter
	resources map[string]*Adapter
}

// NewStorage returns a router; fallback (zero: none) takes every backend
// and resource no Add claimed.
func NewStorage(fallback Adapter) *Storage {
	s := &Storage{backends: map[string]*Adapter{}, resources: map[string]*Adapter{}}
	if fallback.Storage != nil {
		s.fallback = &fallback
	}
	return s
}

// Add makes a the owner of backends and of resources (the volumes and
// shares whose replicas live on them). A name owned twice is refused.
func (s *Storage) Add(a Adapter, backends, resources []string) error {
	if a.Storage == nil {
		return fmt.Errorf("router: adapter %q has no storage", a.Name)
	}
	for _, b := range backends {
		if o, ok := s.backends[b]; ok {
			return fmt.Errorf("router: backend %s is owned by %s already", b, o.Name)
		}
	}
	for _, r := range resources {
		if o, ok := s.resources[r]; ok {
			return fmt.Errorf("router: resource %s is owned by %s already", r, o.Name)
		}
	}
	p := &a
	s.adapters = append(s.adapters, p)
	for _, b := range backends {
		s.backends[b] = p
	}
	for _, r := range resources {
		s.resources[r] = p
	}
	return nil
}

// ResourcesOn lists the volumes and shares of inv's groups whose primary
// copy is on one of backends: what an adapter owning those backends owns.
func ResourcesOn(inv ferry.Inventory, backends ...string) []string {
	on := map[string]bool{}
	for _, b := range backends {
		on[b] = true
	}
	var out []string
	for _, g := range inv.Groups {
		for _, v := range g.Volumes {
			if on[v.Backend] {
				out = append(out, v.Name)
			}
		}
		for _, sh := range g.Shares {
			if on[sh.Backend] {
				out = append(out, sh.Name)
			}
		}
	}
	return out
}

// Set returns base with its storage ports replaced by the router. The
// optional capabilities are the router's when any adapter has them (a call
// for a backend whose adapter lacks one is a Permanent error), else nil.
func (s *Storage) Set(base drivers.Set) drivers.Set {
	base.Storage, base.Replication, base.Host = s, nil, nil
	for _, a := range s.all() {
		if a.Replication != nil {
			base.Replication = s
		}
		if a.Host != nil {
			base.Host = s
		}
	}
	return base
}

func (s *Storage) all() []*Adapter {
	out := append([]*Adapter(nil), s.adapters...)
	if s.fallback != nil {
		out = append(out, s.fallback)
	}
	return out
}

func (s *Storage) route(op, backend string) (*Adapter, error) {
	if a, ok := s.backends[backend]; ok {
		return a, nil
	}
	if s.fallback != nil {
		return s.fallback, nil
	}
	return nil, drivers.Errorf(drivers.Permanent, op, "no adapter serves backend %q", backend)
}

func (s *Storage) storage(op, backend string) (drivers.Storage, error) {
	a, err := s.route(op, backend)
	if err != nil {
		return nil, err
	}
	return a.Storage, nil
}

// Capabilities asks the backend's adapter.
func (s *Storage) Capabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	st, err := s.storage("storage.capabilities", backend)
	if err != nil {
		return drivers.Capabilities{}, err
	}
	return st.Capabilities(ctx, backend)
}

// BackendStatus asks the backend's adapter.
func (s *Storage) BackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	st, err := s.storage("storage.backend_status", backend)
	if err != nil {
		return drivers.BackendStatus{}, err
	}
	return st.BackendStatus(ctx, backend)
}

// ReplicationStatus asks each adapter about the resources it owns, in the
// order the resources first name it, and answers every replica. If an
// adapter fails, the replicas of the others still come back, with the
// first error: a caller that tolerates an unreachable site keeps what it
// can read.
func (s *Storage) ReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.replication_status"
	var order []*Adapter
	split := map[*Adapter][]string{}
	for _, r := range resources {
		a, ok := s.resources[r]
		if !ok {
			if s.fallback == nil {
				return nil, drivers.Errorf(drivers.Permanent, op, "no adapter holds resource %q", r)
			}
			a = s.fallback
		}
		if _, seen := split[a]; !seen {
			order = append(order, a)
		}
		split[a] = append(split[a], r)
	}
	out := []drivers.ReplicaStatus{}
	var first error
	for _, a := range order {
		st, err := a.Storage.ReplicationStatus(ctx, split[a])
		out = append(out, st...)
		if err != nil && first == nil {
			first = err
		}
	}
	return out, first
}

// SnapshotGroup goes to the backend's adapter; so does every call below.
func (s *Storage) SnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	st, err := s.storage("storage.snapshot_group", backend)
	if err != nil {
		return drivers.Snapshot{}, err
	}
	return st.SnapshotGroup(ctx, key, backend, resources)
}

func (s *Storage) Sync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	st, err := s.storage("storage.sync", backend)
	if err != nil {
		return nil, err
	}
	return st.Sync(ctx, key, backend, resources)
}

func (s *Storage) Demote(ctx context.Context, key, backend string, resources []string) error {
	st, err := s.storage("storage.demote", backend)
	if err != nil {
		return err
	}
	return st.Demote(ctx, key, backend, resources)
}

func (s *Storage) Promote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	st, err := s.storage("storage.promote", backend)
	if err != nil {
		return drivers.PromoteResult{}, err
	}
	return st.Promote(ctx, key, backend, resources, force)
}

func (s *Storage) FailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	st, err := s.storage("storage.failover_completed", backend)
	if err != nil {
		return err
	}
	return st.FailoverCompleted(ctx, key, backend, member, activeBackendID)
}

func (s *Storage) SetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	st, err := s.storage("storage.set_replication_status", backend)
	if err != nil {
		return err
	}
	return st.SetReplicationStatus(ctx, key, backend, status, activeBackendID)
}

func (s *Storage) Freeze(ctx context.Context, key, backend string) error {
	st, err := s.storage("storage.freeze", backend)
	if err != nil {
		return err
	}
	return st.Freeze(ctx, key, backend)
}

func (s *Storage) Thaw(ctx context.Context, key, backend string) error {
	st, err := s.storage("storage.thaw", backend)
	if err != nil {
		return err
	}
	return st.Thaw(ctx, key, backend)
}

func (s *Storage) Fence(ctx context.Context, key, backend string, epoch int64) error {
	st, err := s.storage("storage.fence", backend)
	if err != nil {
		return err
	}
	return st.Fence(ctx, key, backend, epoch)
}

func (s *Storage) Unfence(ctx context.Context, key, backend string, epoch int64) error {
	st, err := s.storage("storage.unfence", backend)
	if err != nil {
		return err
	}
	return st.Unfence(ctx, key, backend, epoch)
}

func (s *Storage) Resync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	st, err := s.storage("storage.resync", backend)
	if err != nil {
		return drivers.ResyncResult{}, err
	}
	return st.Resync(ctx, key, backend, resources)
}

func (s *Storage) TestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	st, err := s.storage("storage.test_failover_start", backend)
	if err != nil {
		return nil, err
	}
	return st.TestFailoverStart(ctx, key, backend, resources)
}

func (s *Storage) TestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	st, err := s.storage("storage.test_failover_stop", backend)
	if err != nil {
		return err
	}
	return st.TestFailoverStop(ctx, key, backend, clones)
}

// --- optional capabilities ---------------------------------------------------

func (s *Storage) replication(op, backend string) (drivers.Replication, error) {
	a, err := s.route(op, backend)
	if err != nil {
		return nil, err
	}
	if a.Replication == nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "backend %s is served by %s, which cannot manage replication", backend, a.Name)
	}
	return a.Replication, nil
}

// EnableReplication goes to the adapter of the source backend.
func (s *Storage) EnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	r, err := s.replication("storage.enable_replication", backend)
	if err != nil {
		return err
	}
	return r.EnableReplication(ctx, key, backend, target, resources)
}

// DisableReplication goes to the adapter of the target backend.
func (s *Storage) DisableReplication(ctx context.Context, key, target string, resources []string) error {
	r, err := s.replication("storage.disable_replication", target)
	if err != nil {
		return err
	}
	return r.DisableReplication(ctx, key, target, resources)
}

func (s *Storage) SuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	r, err := s.replication("storage.suspend_replication", backend)
	if err != nil {
		return err
	}
	return r.SuspendReplication(ctx, key, backend, resources)
}

func (s *Storage) ResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	r, err := s.replication("storage.resume_replication", backend)
	if err != nil {
		return err
	}
	return r.ResumeReplication(ctx, key, backend, resources)
}

// FailoverHost goes to the backend's adapter, if it can fail a whole
// backend over.
func (s *Storage) FailoverHost(ctx context.Context, key, backend, targetID string) (drivers.HostFailoverResult, error) {
	const op = "storage.failover_host"
	a, err := s.route(op, backend)
	if err != nil {
		return drivers.HostFailoverResult{}, err
	}
	if a.Host == nil {
		return drivers.HostFailoverResult{}, drivers.Errorf(drivers.Permanent, op, "backend %s is served by %s, which cannot fail a whole backend over", backend, a.Name)
	}
	return a.Host.FailoverHost(ctx, key, backend, targetID)
}
