package testsuite

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	dto "github.com/prometheus/client_model/go"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// scrapeMetrics GETs a /metrics endpoint with token (empty: none) and
// returns the status and the parsed families on 200.
func scrapeMetrics(t *testing.T, url, token string) (int, map[string]*dto.MetricFamily) {
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

// seriesWith returns the series of a family whose labels include want.
func seriesWith(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
next:
	for _, m := range fams[name].GetMetric() {
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

// TestMetricsOfSeparateProcesses: `ferry server` serves the store's state
// on its /metrics to a viewer token only, and `ferry worker` with
// FERRY_METRICS_ADDR serves its driver calls, run durations and Temporal
// SDK metrics on its own listener, after a real failover.
func TestMetricsOfSeparateProcesses(t *testing.T) {
	workerMetrics := freeAddr(t)
	t.Setenv("FERRY_METRICS_ADDR", workerMetrics)
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.applyDemo()
	viewer, err := s.api.CreateToken(ctx, apiclient.CreateTokenRequest{Name: "prometheus", Role: ferry.RoleViewer})
	require.NoError(t, err)

	run, err := s.api.StartRun(ctx, apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: "shop", Mode: ferry.ModePlanned,
		Options: apiclient.RunOptions{SkipApproval: true}})
	require.NoError(t, err)
	end := s.waitEnded(ctx, run.ID)
	require.Equal(t, ferry.RunCompleted, end.State, end.Message)

	// The API: a viewer token is needed, and it shows the runs.
	code, _ := scrapeMetrics(t, s.apiURL+"/metrics", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, api := scrapeMetrics(t, s.apiURL+"/metrics", viewer.Secret)
	require.Equal(t, http.StatusOK, code)
	ms := seriesWith(api, "ferry_runs", map[string]string{"kind": "failover", "state": "completed"})
	require.Len(t, ms, 1)
	require.Equal(t, 1.0, ms[0].GetGauge().GetValue())
	require.NotEmpty(t, seriesWith(api, "temporal_request_total", nil), "the API's Temporal client reports")
	require.Empty(t, seriesWith(api, "ferry_driver_call_duration_seconds", nil), "the API calls no driver")

	// The worker's listener: no token, driver calls and durations.
	code, wk := scrapeMetrics(t, "http://"+workerMetrics+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	promote := seriesWith(wk, "ferry_driver_call_duration_seconds", map[string]string{"adapter": "sim", "port": "storage", "operation": "promote"})
	require.Len(t, promote, 1)
	require.GreaterOrEqual(t, promote[0].GetHistogram().GetSampleCount(), uint64(1))
	runs := seriesWith(wk, "ferry_run_duration_seconds", map[string]string{"kind": "failover", "state": "completed"})
	require.Len(t, runs, 1)
	require.Equal(t, uint64(1), runs[0].GetHistogram().GetSampleCount())
	require.InDelta(t, end.Ended.Sub(end.Created).Seconds(), runs[0].GetHistogram().GetSampleSum(), 0.001)
	var temporal int
	for name := range wk {
		if strings.HasPrefix(name, "temporal_") {
			temporal++
		}
	}
	require.Greater(t, temporal, 10, "the worker's Temporal SDK metrics")
	require.NotEmpty(t, seriesWith(wk, "temporal_workflow_completed_total", map[string]string{"workflow_type": "failover"}))
	require.Empty(t, seriesWith(wk, "ferry_runs", nil), "the store's state is the API's to export")
}
