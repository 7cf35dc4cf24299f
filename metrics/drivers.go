package metrics

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydr/ferry/drivers"
)

// driverMetrics time every call through a driver port. Labels are bounded
// by the code, never by the inventory: adapter (the Go package of the
// port's implementation), port and operation; a call's backend, site or
// resources are not labels.
type driverMetrics struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

func newDriverMetrics() *driverMetrics {
	return &driverMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_driver_call_duration_seconds",
			Help: "Duration of driver calls, failed ones included, by adapter, port and operation.",
			// 5 ms (an in-process simulator) to about 2 minutes (a
			// promote of many volumes on real storage).
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"adapter", "port", "operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_driver_call_errors_total",
			Help: "Driver calls that returned an error, by adapter, port, operation and kind (permanent, unreachable, retryable, canceled).",
		}, []string{"adapter", "port", "operation", "kind"}),
	}
}

// AdapterName names the adapter behind a port: the last element of its
// implementation's Go package ("sim", "openstack", "postgres", "router"
// for a port that routes between adapters).
func AdapterName(port any) string {
	t := reflect.TypeOf(port)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.PkgPath() == "" {
		return "unknown"
	}
	p := t.PkgPath()
	return p[strings.LastIndex(p, "/")+1:]
}

// Instrument returns set with every port timed and its errors counted:
// the one place a worker's drivers get their metrics, whatever adapters
// they are. A nil port (an optional capability the adapter lacks) stays
// nil, and the storage keeps the optional interfaces activities look for
// (drivers.BubbleCloner, drivers.MemberVerifier).
func (r *Registry) Instrument(set drivers.Set) drivers.Set {
	if r == nil {
		return set
	}
	m := r.drivers
	out := drivers.Set{}
	if set.Storage != nil {
		s := &storage{timer: m.timer(set.Storage, "storage"), inner: set.Storage}
		if bc, ok := set.Storage.(drivers.BubbleCloner); ok {
			out.Storage = &bubbleStorage{storage: s, bc: bc}
		} else {
			out.Storage = s
		}
	}
	if set.Replication != nil {
		out.Replication = &replication{timer: m.timer(set.Replication, "replication"), inner: set.Replication}
	}
	if set.Host != nil {
		out.Host = &host{timer: m.timer(set.Host, "host"), inner: set.Host}
	}
	if set.Compute != nil {
		out.Compute = &compute{timer: m.timer(set.Compute, "compute"), inner: set.Compute}
	}
	if set.Network != nil {
		out.Network = &network{timer: m.timer(set.Network, "network"), inner: set.Network}
	}
	if set.DNS != nil {
		out.DNS = &dns{timer: m.timer(set.DNS, "dns"), inner: set.DNS}
	}
	if set.Verify != nil {
		out.Verify = &verify{timer: m.timer(set.Verify, "verify"), inner: set.Verify}
	}
	return out
}

// timer observes the calls of one port.
type timer struct {
	m             *driverMetrics
	adapter, port string
}

func (m *driverMetrics) timer(port any, name string) timer {
	return timer{m: m, adapter: AdapterName(port), port: name}
}

// start begins a call of op; the returned func ends it with its error.
func (t timer) start(op string) func(error) {
	begin := time.Now()
	return func(err error) {
		t.m.latency.WithLabelValues(t.adapter, t.port, op).Observe(time.Since(begin).Seconds())
		if err != nil {
			t.m.errors.WithLabelValues(t.adapter, t.port, op, errorKind(err)).Inc()
		}
	}
}

func errorKind(err error) string {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "canceled"
	}
	return string(drivers.Kind(err))
}

type storage struct {
	timer
	inner drivers.Storage
}

func (s *storage) Capabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	done := s.start("capabilities")
	v, err := s.inner.Capabilities(ctx, backend)
	done(err)
	return v, err
}

func (s *storage) BackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	done := s.start("backend_status")
	v, err := s.inner.BackendStatus(ctx, backend)
	done(err)
	return v, err
}

func (s *storage) ReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, error) {
	done := s.start("replication_status")
	v, err := s.inner.ReplicationStatus(ctx, resources)
	done(err)
	return v, err
}

func (s *storage) SnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	done := s.start("snapshot_group")
	v, err := s.inner.SnapshotGroup(ctx, key, backend, resources)
	done(err)
	return v, err
}

func (s *storage) Sync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	done := s.start("sync")
	v, err := s.inner.Sync(ctx, key, backend, resources)
	done(err)
	return v, err
}

func (s *storage) Demote(ctx context.Context, key, backend string, resources []string) error {
	done := s.start("demote")
	err := s.inner.Demote(ctx, key, backend, resources)
	done(err)
	return err
}

func (s *storage) Promote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	done := s.start("promote")
	v, err := s.inner.Promote(ctx, key, backend, resources, force)
	done(err)
	return v, err
}

func (s *storage) FailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	done := s.start("failover_completed")
	err := s.inner.FailoverCompleted(ctx, key, backend, member, activeBackendID)
	done(err)
	return err
}

func (s *storage) SetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	done := s.start("set_replication_status")
	err := s.inner.SetReplicationStatus(ctx, key, backend, status, activeBackendID)
	done(err)
	return err
}

func (s *storage) Freeze(ctx context.Context, key, backend string) error {
	done := s.start("freeze")
	err := s.inner.Freeze(ctx, key, backend)
	done(err)
	return err
}

func (s *storage) Thaw(ctx context.Context, key, backend string) error {
	done := s.start("thaw")
	err := s.inner.Thaw(ctx, key, backend)
	done(err)
	return err
}

func (s *storage) Fence(ctx context.Context, key, backend string, epoch int64) error {
	done := s.start("fence")
	err := s.inner.Fence(ctx, key, backend, epoch)
	done(err)
	return err
}

func (s *storage) Unfence(ctx context.Context, key, backend string, epoch int64) error {
	done := s.start("unfence")
	err := s.inner.Unfence(ctx, key, backend, epoch)
	done(err)
	return err
}

func (s *storage) Resync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	done := s.start("resync")
	v, err := s.inner.Resync(ctx, key, backend, resources)
	done(err)
	return v, err
}

func (s *storage) TestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	done := s.start("test_failover_start")
	v, err := s.inner.TestFailoverStart(ctx, key, backend, resources)
	done(err)
	return v, err
}

func (s *storage) TestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	done := s.start("test_failover_stop")
	err := s.inner.TestFailoverStop(ctx, key, backend, clones)
	done(err)
	return err
}

// VerifiesMembers answers as the adapter does; an adapter without the
// method does not verify, which is what activities assume of it too.
func (s *storage) VerifiesMembers() bool {
	v, ok := s.inner.(drivers.MemberVerifier)
	return ok && v.VerifiesMembers()
}

// bubbleStorage is a storage whose adapter can start clones in a bubble:
// only such a storage may offer TestFailoverStartIn, since a drill picks
// its path by whether the method is there.
type bubbleStorage struct {
	*storage
	bc drivers.BubbleCloner
}

func (s *bubbleStorage) TestFailoverStartIn(ctx context.Context, key, backend string, resources []string, bubble string) ([]string, error) {
	done := s.start("test_failover_start_in")
	v, err := s.bc.TestFailoverStartIn(ctx, key, backend, resources, bubble)
	done(err)
	return v, err
}

type replication struct {
	timer
	inner drivers.Replication
}

func (s *replication) EnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	done := s.start("enable_replication")
	err := s.inner.EnableReplication(ctx, key, backend, target, resources)
	done(err)
	return err
}

func (s *replication) DisableReplication(ctx context.Context, key, target string, resources []string) error {
	done := s.start("disable_replication")
	err := s.inner.DisableReplication(ctx, key, target, resources)
	done(err)
	return err
}

func (s *replication) SuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	done := s.start("suspend_replication")
	err := s.inner.SuspendReplication(ctx, key, backend, resources)
	done(err)
	return err
}

func (s *replication) ResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	done := s.start("resume_replication")
	err := s.inner.ResumeReplication(ctx, key, backend, resources)
	done(err)
	return err
}

type host struct {
	timer
	inner drivers.HostFailover
}

func (s *host) FailoverHost(ctx context.Context, key, backend, targetID string) (drivers.HostFailoverResult, error) {
	done := s.start("failover_host")
	v, err := s.inner.FailoverHost(ctx, key, backend, targetID)
	done(err)
	return v, err
}

type compute struct {
	timer
	inner drivers.Compute
}

func (s *compute) Quiesce(ctx context.Context, key, site string, servers []string) error {
	done := s.start("quiesce")
	err := s.inner.Quiesce(ctx, key, site, servers)
	done(err)
	return err
}

func (s *compute) Unquiesce(ctx context.Context, key, site string, servers []string) error {
	done := s.start("unquiesce")
	err := s.inner.Unquiesce(ctx, key, site, servers)
	done(err)
	return err
}

func (s *compute) Stop(ctx context.Context, key, site string, servers []string) error {
	done := s.start("stop")
	err := s.inner.Stop(ctx, key, site, servers)
	done(err)
	return err
}

func (s *compute) Start(ctx context.Context, key, site string, servers []string) error {
	done := s.start("start")
	err := s.inner.Start(ctx, key, site, servers)
	done(err)
	return err
}

func (s *compute) Boot(ctx context.Context, key, site string, servers []drivers.BootSpec) error {
	done := s.start("boot")
	err := s.inner.Boot(ctx, key, site, servers)
	done(err)
	return err
}

func (s *compute) Health(ctx context.Context, site string, servers []string) ([]drivers.ServerHealth, error) {
	done := s.start("health")
	v, err := s.inner.Health(ctx, site, servers)
	done(err)
	return v, err
}

type network struct {
	timer
	inner drivers.Network
}

func (s *network) MapNetworks(ctx context.Context, key, site string, mappings []drivers.NetworkMapping) error {
	done := s.start("map_networks")
	err := s.inner.MapNetworks(ctx, key, site, mappings)
	done(err)
	return err
}

func (s *network) CreateBubble(ctx context.Context, key, site, name string) (string, error) {
	done := s.start("create_bubble")
	v, err := s.inner.CreateBubble(ctx, key, site, name)
	done(err)
	return v, err
}

func (s *network) DestroyBubble(ctx context.Context, key, site, id string) error {
	done := s.start("destroy_bubble")
	err := s.inner.DestroyBubble(ctx, key, site, id)
	done(err)
	return err
}

type dns struct {
	timer
	inner drivers.DNS
}

func (s *dns) Get(ctx context.Context, name, typ string) (drivers.Record, error) {
	done := s.start("get")
	v, err := s.inner.Get(ctx, name, typ)
	done(err)
	return v, err
}

func (s *dns) Replace(ctx context.Context, key string, rec drivers.Record) error {
	done := s.start("replace")
	err := s.inner.Replace(ctx, key, rec)
	done(err)
	return err
}

type verify struct {
	timer
	inner drivers.Verify
}

// Check counts an error of the call, not a check that ran and failed: a
// failed check is an answer (see ferry_run_* for runs whose checks failed).
func (s *verify) Check(ctx context.Context, site, network string, c drivers.CheckSpec) (drivers.CheckResult, error) {
	done := s.start("check")
	v, err := s.inner.Check(ctx, site, network, c)
	done(err)
	return v, err
}

// Compile-time checks that the wrappers are the ports.
var (
	_ drivers.Storage        = (*storage)(nil)
	_ drivers.MemberVerifier = (*storage)(nil)
	_ drivers.BubbleCloner   = (*bubbleStorage)(nil)
	_ drivers.Replication    = (*replication)(nil)
	_ drivers.HostFailover   = (*host)(nil)
	_ drivers.Compute        = (*compute)(nil)
	_ drivers.Network        = (*network)(nil)
	_ drivers.DNS            = (*dns)(nil)
	_ drivers.Verify         = (*verify)(nil)
)
