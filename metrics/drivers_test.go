package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/metrics"
)

func gather(t *testing.T, m *metrics.Registry) scrape {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	require.NoError(t, err)
	out := scrape{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// TestInstrumentedDrivers drives the real simulator through the
// decorator: calls are timed by adapter, port and operation, failures
// counted by kind (a cancelled call apart), the optional capabilities stay
// what the adapter offers, and answers pass through unchanged.
func TestInstrumentedDrivers(t *testing.T) {
	ctx := context.Background()
	cloud := sim.NewCloud(sim.Options{})
	require.NoError(t, cloud.LoadInventory(demo.Inventory()))
	raw := sim.NewInProcess(cloud).Set()
	m := metrics.MustNew()
	set := m.Instrument(raw)

	// What the adapter can do, the decorated set can do; what it cannot,
	// stays nil.
	_, rawBC := raw.Storage.(drivers.BubbleCloner)
	_, bc := set.Storage.(drivers.BubbleCloner)
	require.Equal(t, rawBC, bc)
	only := m.Instrument(drivers.Set{Storage: &noBubbles{raw.Storage}, Compute: raw.Compute})
	require.Nil(t, only.Replication)
	require.Nil(t, only.Host)
	require.Nil(t, only.DNS)
	_, bc = only.Storage.(drivers.BubbleCloner)
	require.False(t, bc, "a storage without bubble clones must not claim them")
	require.False(t, only.Storage.(drivers.MemberVerifier).VerifiesMembers())
	require.Equal(t, "sim", metrics.AdapterName(raw.Storage))

	// Answers pass through.
	want, err := raw.Storage.ReplicationStatus(ctx, []string{"crm-db-data"})
	require.NoError(t, err)
	got, err := set.Storage.ReplicationStatus(ctx, []string{"crm-db-data"})
	require.NoError(t, err)
	require.Equal(t, len(want), len(got))
	require.Equal(t, want[0].Resource, got[0].Resource)

	// Failures by kind.
	cloud.InjectFault(sim.Fault{Op: "storage.backend_status", Kind: drivers.Unreachable, Times: 2})
	for range 2 {
		_, err = set.Storage.BackendStatus(ctx, "a-block")
		require.Error(t, err)
	}
	_, err = set.Storage.BackendStatus(ctx, "a-block")
	require.NoError(t, err)
	cloud.InjectFault(sim.Fault{Op: "compute.health", Latency: time.Minute, Times: 1})
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = set.Compute.Health(cctx, "site-a", []string{"crm-db-1"})
	cancel()
	require.Error(t, err)

	s := gather(t, m)
	n, sum := s.histogram("ferry_driver_call_duration_seconds", map[string]string{"adapter": "sim", "port": "storage", "operation": "backend_status"})
	require.Equal(t, uint64(3), n)
	require.Greater(t, sum, 0.0)
	v, _ := s.value("ferry_driver_call_errors_total", map[string]string{"adapter": "sim", "port": "storage", "operation": "backend_status", "kind": drivers.Unreachable})
	require.Equal(t, 2.0, v)
	v, _ = s.value("ferry_driver_call_errors_total", map[string]string{"port": "compute", "operation": "health", "kind": "canceled"})
	require.Equal(t, 1.0, v)
	n, _ = s.histogram("ferry_driver_call_duration_seconds", map[string]string{"port": "storage", "operation": "replication_status"})
	require.Equal(t, uint64(1), n, "only the decorated call is timed")
}

// noBubbles hides every method but the Storage port's.
type noBubbles struct{ drivers.Storage }

// TestRunRecordedObservesDurations: a final record's run and steps are
// observed once, by kind and state; a record that is not final is not.
func TestRunRecordedObservesDurations(t *testing.T) {
	m := metrics.MustNew()
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	run := ferry.Run{Kind: ferry.KindDrill, State: ferry.RunFailed, Created: t0, Ended: at(90), Steps: []ferry.Step{
		{Name: "bubble", State: ferry.StepCompleted, Started: at(1), Ended: at(3)},
		{Name: "clone", State: ferry.StepFailed, Started: at(3), Ended: at(80)},
		{Name: "checks", State: ferry.StepPending},
	}}
	m.RunRecorded(run)
	m.RunRecorded(ferry.Run{Kind: ferry.KindDrill, State: ferry.RunRunning, Created: t0})
	var nilRegistry *metrics.Registry
	nilRegistry.RunRecorded(run) // a worker without metrics

	s := gather(t, m)
	n, sum := s.histogram("ferry_run_duration_seconds", map[string]string{"kind": "drill", "state": "failed"})
	require.Equal(t, uint64(1), n)
	require.Equal(t, 90.0, sum)
	n, _ = s.histogram("ferry_run_duration_seconds", nil)
	require.Equal(t, uint64(1), n, "the unfinished record is not observed")
	n, sum = s.histogram("ferry_run_step_duration_seconds", map[string]string{"kind": "drill", "step": "clone", "state": "failed"})
	require.Equal(t, uint64(1), n)
	require.Equal(t, 77.0, sum)
	n, _ = s.histogram("ferry_run_step_duration_seconds", map[string]string{"step": "checks"})
	require.Equal(t, uint64(0), n, "a step that never ran is not observed")
}
