package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/telemetry"
	"github.com/ferrydr/ferry/telemetry/otlptest"
	"github.com/ferrydr/ferry/worker"
)

// lockedBuffer is a log sink many goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// jsonLogLines parses the JSON lines of a log; a line that is not JSON
// fails the test (FERRY_LOG_FORMAT=json means every line).
func jsonLogLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "not a JSON line: %s", line)
		out = append(out, m)
	}
	return out
}

// mentions says whether any value of the line contains one of ids.
func mentions(m map[string]any, ids ...string) bool {
	for _, v := range m {
		s := fmt.Sprint(v)
		for _, id := range ids {
			if strings.Contains(s, id) {
				return true
			}
		}
	}
	return false
}

// A run started through the real API on a real Temporal server and worker,
// wired as `ferry server` and `ferry worker` wire them, with tracing on by
// the standard variables: one trace, exported over OTLP/HTTP, holds the
// API's request, the workflow's start and run, and its activities; the
// server and the worker log JSON lines naming the request, the run and its
// group; no token is in either.
func TestTracesAndLogsOfARun(t *testing.T) {
	// The dev server first: it reads the OTEL_ variables too.
	temporal := devserver.Start(t)
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		t.Setenv(v, "")
	}
	rc := otlptest.NewHTTP(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shutdown, err := telemetry.SetupTracing(ctx, "ferry-test", nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	require.True(t, telemetry.TracingEnabled())

	st := storetest.New(t)
	inv := demo.Inventory()
	require.NoError(t, st.ApplyInventory(ctx, inv))
	token := storetest.AdminToken(t, st)
	cfg, err := config.LoadFrom(map[string]string{
		"FERRY_TEMPORAL_ADDRESS": temporal.HostPort,
		"FERRY_TASK_QUEUE":       "observability",
		"FERRY_LOG_FORMAT":       "json",
		"FERRY_LOG_LEVEL":        "debug",
	})
	require.NoError(t, err)
	var apiLogs, workerLogs lockedBuffer
	apiLogger := newLogger(cfg, &apiLogs).With("service", "server")
	workerLogger := newLogger(cfg, &workerLogs).With("service", "worker")

	// The worker, as runWorker builds it, on its own client.
	wc, err := dialTemporal(ctx, cfg, workerLogger)
	require.NoError(t, err)
	t.Cleanup(wc.Close)
	cloud := sim.NewCloud(sim.Options{BootTime: 20 * time.Millisecond})
	require.NoError(t, cloud.LoadInventory(inv))
	w := worker.New(wc, cfg.TaskQueue, &activities.Activities{Drivers: sim.NewInProcess(cloud).Set(), Store: st}, workerOptions(cfg))
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	// The API, as runServer builds it, on another.
	ac, err := dialTemporal(ctx, cfg, apiLogger)
	require.NoError(t, err)
	t.Cleanup(ac.Close)
	api := httptest.NewServer(apiHandler(cfg, st, ac, nil, apiLogger))
	t.Cleanup(api.Close)

	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, api.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	status, body := call(http.MethodPost, "/v1/runs", `{"kind":"drill","group":"shop"}`)
	require.Equal(t, http.StatusCreated, status, "%s", body)
	var started struct {
		ID         string `json:"id"`
		WorkflowID string `json:"workflow_id"`
	}
	require.NoError(t, json.Unmarshal(body, &started))
	require.NotEmpty(t, started.ID)
	var run ferry.Run
	require.Eventually(t, func() bool {
		status, body := call(http.MethodGet, "/v1/runs/"+started.ID, "")
		require.Equal(t, http.StatusOK, status, "%s", body)
		require.NoError(t, json.Unmarshal(body, &run))
		return ferry.RunEnded(run.State)
	}, 2*time.Minute, 200*time.Millisecond)
	require.Equal(t, ferry.RunCompleted, run.State)
	status, body = call(http.MethodGet, "/v1/groups/shop", "")
	require.Equal(t, http.StatusOK, status, "%s", body)

	// The store says completed an instant before the workflow closes (its
	// last activity records the run): wait for the close, which ends the
	// RunWorkflow span. Then shutdown flushes what the batcher holds.
	require.NoError(t, wc.GetWorkflow(ctx, started.WorkflowID, started.ID).Get(ctx, nil))
	require.NoError(t, shutdown(ctx))

	// The trace.
	spans := rc.Spans()
	var root otlptest.Span
	for _, s := range spans {
		require.NotContains(t, s.Name, started.ID, "no id in a span name")
		if s.Name == "POST /v1/runs" {
			root = s
		}
	}
	require.NotEmpty(t, root.TraceID, "no server span for POST /v1/runs among %d spans", len(spans))
	require.Empty(t, root.ParentSpanID, "the API's request starts the trace")
	require.Equal(t, "/v1/runs", root.Attributes["http.route"])
	byID := map[string]otlptest.Span{}
	kinds := map[string]int{}
	for _, s := range spans {
		if s.TraceID != root.TraceID {
			continue
		}
		byID[s.SpanID] = s
		kinds[strings.SplitN(s.Name, ":", 2)[0]]++
	}
	for _, kind := range []string{"StartWorkflow", "RunWorkflow", "StartActivity", "RunActivity"} {
		require.NotZero(t, kinds[kind], "no %s span in the run's trace: %v", kind, kinds)
	}
	for _, s := range byID {
		switch {
		case strings.HasPrefix(s.Name, "StartWorkflow:"):
			require.Equal(t, root.SpanID, s.ParentSpanID, "the workflow starts under the request")
		case strings.HasPrefix(s.Name, "RunActivity:"):
			require.Contains(t, byID, s.ParentSpanID, "an activity's parent is in the trace")
		}
	}
	var getSpan bool
	for _, s := range spans {
		getSpan = getSpan || s.Name == "GET /v1/runs/{id}"
	}
	require.True(t, getSpan, "a run's reads are named by their route")
	require.NotContains(t, string(rc.Raw()), token)

	// The logs.
	apiText, workerText := apiLogs.String(), workerLogs.String()
	require.NotContains(t, apiText, token)
	require.NotContains(t, workerText, token)
	requests := 0
	for _, m := range jsonLogLines(t, apiText) {
		if m["component"] == "temporal" {
			continue // the Temporal client's own lines, outside any request
		}
		require.NotEmpty(t, m["request_id"], "an API line without request_id: %v", m)
		require.NotEmpty(t, m["trace_id"], "an API line without trace_id: %v", m)
		if m["method"] == http.MethodPost && m["path"] == "/v1/runs" {
			require.Equal(t, root.TraceID, m["trace_id"], "the request's line names its trace")
		}
		if m["msg"] == "http request" && mentions(m, started.ID) {
			requests++
		}
		if mentions(m, started.ID, started.WorkflowID) || m["path"] == "/v1/runs" || m["path"] == "/v1/groups/shop" {
			require.Equal(t, "shop", m["group"], "an API line about the run without its group: %v", m)
		}
		if mentions(m, started.ID, started.WorkflowID) || m["path"] == "/v1/runs" {
			require.Equal(t, started.ID, m["run_id"], "an API line about the run without its id: %v", m)
		}
	}
	require.NotZero(t, requests, "the API logged the run's reads")
	about := 0
	for _, m := range jsonLogLines(t, workerText) {
		if !mentions(m, started.ID, started.WorkflowID) {
			continue
		}
		about++
		require.Equal(t, started.ID, m["run_id"], "a worker line about the run without run_id: %v", m)
		require.Equal(t, started.WorkflowID, m["workflow_id"], "a worker line about the run without workflow_id: %v", m)
		require.Equal(t, "shop", m["group"], "a worker line about the run without its group: %v", m)
		require.NotEmpty(t, m["trace_id"], "a worker line about the run without trace_id: %v", m)
	}
	require.NotZero(t, about, "the worker logged nothing about the run")
}
