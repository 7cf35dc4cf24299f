package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/metrics"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/worker"
)

// family is a scraped metric family's series, by their labels.
type scrape map[string]*dto.MetricFamily

// get scrapes url with token (empty: none) and returns the status and,
// on 200, the parsed families.
func get(t *testing.T, url, token string) (int, scrape) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, fams
}

// series returns the series of a family whose labels include want.
func (s scrape) series(name string, want map[string]string) []*dto.Metric {
	f, ok := s[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// value is the value of the one series of a gauge or counter with labels
// want; ok is false when there is none.
func (s scrape) value(name string, want map[string]string) (float64, bool) {
	ms := s.series(name, want)
	if len(ms) != 1 {
		return 0, false
	}
	m := ms[0]
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Untyped != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// histogram sums the counts and sums of a histogram's series with labels
// want.
func (s scrape) histogram(name string, want map[string]string) (count uint64, sum float64) {
	for _, m := range s.series(name, want) {
		count += m.GetHistogram().GetSampleCount()
		sum += m.GetHistogram().GetSampleSum()
	}
	return count, sum
}

// names lists every series name a scrape exposes (a histogram's _bucket,
// _count and _sum included).
func (s scrape) names() map[string]bool {
	out := map[string]bool{}
	for name, f := range s {
		out[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				out[name+suf] = true
			}
		}
	}
	return out
}

// TestMetricsOfARealSystem runs Ferry as `ferry dev` wires it, in one
// process on one registry: a real Temporal dev server, the real store,
// the simulator, the worker with instrumented drivers and the API with
// /metrics. It runs a failover to completion, holds another one paused,
// makes a replica lag past three times its group's RPO for the monitor to
// see, then scrapes /metrics through the API with a viewer token and
// checks what each part exported; the alert rules' metrics are all among
// them.
func TestMetricsOfARealSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	temporal := devserver.Start(t)
	st := storetest.New(t)
	inv := demo.Inventory()
	for i := range inv.Groups {
		if inv.Groups[i].Name == "crm" {
			inv.Groups[i].RPOSeconds = 1 // so a lag of seconds breaks it
		}
	}
	require.NoError(t, st.ApplyInventory(ctx, inv))
	cloud := sim.NewCloud(sim.Options{BootTime: 20 * time.Millisecond})
	require.NoError(t, cloud.LoadInventory(inv))

	m := metrics.MustNew()
	opts := client.Options{HostPort: temporal.HostPort, Namespace: "default"}
	m.ClientOptions(&opts)
	c, err := client.Dial(opts)
	require.NoError(t, err)
	defer c.Close()

	queue := "metrics-" + t.Name()
	set := m.Instrument(sim.NewInProcess(cloud).Set())
	w := worker.New(c, queue, &activities.Activities{Drivers: set, Store: st, Runs: m}, worker.Options{})
	require.NoError(t, w.Start())
	defer w.Stop()

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, m.WatchState(st, metrics.StateOptions{Temporal: c, MonitorInterval: time.Second, TTL: time.Millisecond, Logger: logger}))
	srv := httptest.NewServer(server.New(server.Deps{
		Store: st, Temporal: c, Namespace: "default", TaskQueue: queue, Logger: logger, Metrics: m.Handler(),
	}))
	defer srv.Close()
	admin := apiclient.New(srv.URL, http.DefaultClient, apiclient.WithToken(storetest.AdminToken(t, st)))
	viewer := storetest.Token(t, st, "prometheus", ferry.RoleViewer, "")

	// Without a token, or with a bad one, nothing.
	code, _ := get(t, srv.URL+"/metrics", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = get(t, srv.URL+"/metrics", "not-a-token")
	require.Equal(t, http.StatusUnauthorized, code)

	// A planned failover of shop, to the end.
	done, err := admin.StartRun(ctx, apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: "shop", Mode: ferry.ModePlanned,
		Options: apiclient.RunOptions{SkipApproval: true}})
	require.NoError(t, err)
	var end ferry.Run
	require.Eventually(t, func() bool {
		end, err = admin.GetRun(ctx, done.ID)
		return err == nil && ferry.RunEnded(end.State)
	}, 2*time.Minute, 100*time.Millisecond)
	require.Equal(t, ferry.RunCompleted, end.State, end.Message)

	// A failover of crm held for approval, then approved: its DNS step
	// fails for good (a permanent fault of the simulator) after promote,
	// and the run pauses for an operator's decision.
	held, err := admin.StartRun(ctx, apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: "crm", Mode: ferry.ModePlanned})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := admin.GetRun(ctx, held.ID)
		return err == nil && r.State == ferry.RunWaitingApproval
	}, time.Minute, 50*time.Millisecond)
	_, s := get(t, srv.URL+"/metrics", viewer)
	v, ok := s.value("ferry_runs", map[string]string{"kind": "failover", "state": "waiting_approval"})
	require.True(t, ok)
	require.Equal(t, 1.0, v, "a run waiting for approval counts under its live state")
	cloud.InjectFault(sim.Fault{Op: "dns.replace", Kind: "permanent"})
	_, err = admin.Steer(ctx, held.ID, apiclient.ActionApprove, apiclient.SteerRequest{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := admin.GetRun(ctx, held.ID)
		return err == nil && r.State == ferry.RunPaused
	}, time.Minute, 50*time.Millisecond)

	// crm's secondaries (at site-a now) fall behind: replication nearly
	// stops, and a write waits. Its monitors look every second.
	require.NoError(t, cloud.SetLag("b-block", time.Hour))
	require.NoError(t, cloud.SetLag("a-block", time.Hour))
	_, err = cloud.Write("crm-db-data", 1)
	require.NoError(t, err)
	require.NoError(t, worker.EnsureMonitors(ctx, c, st, queue, time.Second))
	require.Eventually(t, func() bool {
		_, s := get(t, srv.URL+"/metrics", viewer)
		v, ok := s.value("ferry_rpo_violation_events_total", map[string]string{"group": "crm", "severity": "critical"})
		return ok && v >= 1
	}, time.Minute, 250*time.Millisecond, "no critical RPO event for crm")

	code, s = get(t, srv.URL+"/metrics", viewer)
	require.Equal(t, http.StatusOK, code)

	// Runs: by kind and state, the live ones by their live state.
	v, _ = s.value("ferry_runs", map[string]string{"kind": "failover", "state": "completed"})
	require.Equal(t, 1.0, v)
	v, _ = s.value("ferry_runs", map[string]string{"kind": "failover", "state": "paused"})
	require.Equal(t, 1.0, v)
	v, _ = s.value("ferry_runs", map[string]string{"kind": "failover", "state": "running"})
	require.Equal(t, 0.0, v, "the paused run is not counted as running too")
	paused, ok := s.value("ferry_run_paused_seconds", map[string]string{"kind": "failover", "group": "crm"})
	require.True(t, ok, "no paused-time series for crm")
	require.GreaterOrEqual(t, paused, 0.0)
	require.Less(t, paused, 120.0)

	// Durations: the completed failover, once, as long as its record says,
	// and its steps.
	n, sum := s.histogram("ferry_run_duration_seconds", map[string]string{"kind": "failover", "state": "completed"})
	require.Equal(t, uint64(1), n)
	require.InDelta(t, end.Ended.Sub(end.Created).Seconds(), sum, 0.001)
	n, _ = s.histogram("ferry_run_step_duration_seconds", map[string]string{"kind": "failover", "step": "promote", "state": "completed"})
	require.Equal(t, uint64(1), n)
	n, _ = s.histogram("ferry_run_step_duration_seconds", map[string]string{"kind": "failover"})
	require.GreaterOrEqual(t, n, uint64(8), "a failover has many steps")

	// Driver calls: the simulator's promote and the monitor's reads, and
	// no resource or backend in any label.
	n, sum = s.histogram("ferry_driver_call_duration_seconds", map[string]string{"adapter": "sim", "port": "storage", "operation": "promote"})
	require.GreaterOrEqual(t, n, uint64(1))
	require.Greater(t, sum, 0.0)
	n, _ = s.histogram("ferry_driver_call_duration_seconds", map[string]string{"adapter": "sim", "port": "storage", "operation": "replication_status"})
	require.GreaterOrEqual(t, n, uint64(1))
	n, _ = s.histogram("ferry_driver_call_duration_seconds", map[string]string{"adapter": "sim", "port": "compute", "operation": "boot"})
	require.GreaterOrEqual(t, n, uint64(1))
	v, _ = s.value("ferry_driver_call_errors_total", map[string]string{"adapter": "sim", "port": "dns", "operation": "replace", "kind": "permanent"})
	require.GreaterOrEqual(t, v, 1.0, "the failed DNS call is counted")
	_, ok = s.value("ferry_driver_call_errors_total", map[string]string{"port": "storage", "operation": "promote"})
	require.False(t, ok, "no promote failed")
	for _, name := range []string{"ferry_driver_call_duration_seconds", "ferry_driver_call_errors_total"} {
		for _, m := range s.series(name, nil) {
			for _, l := range m.GetLabel() {
				require.Contains(t, []string{"adapter", "port", "operation", "kind", "le"}, l.GetName())
			}
		}
	}

	// Replication: crm's secondary lags past 3x its RPO of 1 s and breaks
	// it; shop's (no writes since its failover) keep theirs.
	lag, ok := s.value("ferry_replica_lag_seconds", map[string]string{"group": "crm", "resource": "crm-db-data", "site": "site-a"})
	require.True(t, ok, "no lag series for crm-db-data@site-a")
	require.Greater(t, lag, 3.0)
	v, _ = s.value("ferry_replica_rpo_compliant", map[string]string{"group": "crm", "resource": "crm-db-data", "site": "site-a"})
	require.Equal(t, 0.0, v)
	v, _ = s.value("ferry_group_rpo_seconds", map[string]string{"group": "crm"})
	require.Equal(t, 1.0, v)
	last, ok := s.value("ferry_monitor_last_report_timestamp_seconds", map[string]string{"group": "crm"})
	require.True(t, ok)
	require.InDelta(t, float64(time.Now().Unix()), last, 30)
	v, _ = s.value("ferry_monitor_interval_seconds", nil)
	require.Equal(t, 1.0, v)
	for _, sh := range s.series("ferry_replica_rpo_compliant", map[string]string{"group": "shop"}) {
		require.Equal(t, 1.0, sh.GetGauge().GetValue(), "shop keeps its RPO")
	}

	// The Temporal SDK's own metrics, of the worker and of the clients.
	var temporalNames []string
	for name := range s {
		if strings.HasPrefix(name, "temporal_") {
			temporalNames = append(temporalNames, name)
		}
	}
	sort.Strings(temporalNames)
	t.Logf("temporal series: %v", temporalNames)
	require.Contains(t, temporalNames, "temporal_request_total", "got %v", temporalNames)
	require.Contains(t, temporalNames, "temporal_workflow_completed_total", "got %v", temporalNames)
	require.Contains(t, temporalNames, "temporal_activity_execution_latency_seconds", "got %v", temporalNames)
	v, _ = s.value("temporal_workflow_completed_total", map[string]string{"workflow_type": "failover", "task_queue": queue})
	require.GreaterOrEqual(t, v, 1.0)

	// Every metric the alert rules read is exposed.
	checkRulesExposed(t, s.names())

	// The paused run is aborted: its duration is observed, and it is no
	// longer paused.
	_, err = admin.Steer(ctx, held.ID, apiclient.ActionAbort, apiclient.SteerRequest{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := admin.GetRun(ctx, held.ID)
		return err == nil && ferry.RunEnded(r.State)
	}, time.Minute, 100*time.Millisecond)
	_, s = get(t, srv.URL+"/metrics", viewer)
	_, ok = s.value("ferry_run_paused_seconds", map[string]string{"kind": "failover", "group": "crm"})
	require.False(t, ok, "an ended run is not paused")
	v, _ = s.value("ferry_runs", map[string]string{"kind": "failover", "state": "paused"})
	require.Equal(t, 0.0, v)
	n, _ = s.histogram("ferry_run_duration_seconds", map[string]string{"kind": "failover"})
	require.Equal(t, uint64(2), n)
}
