package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/ferrydr/ferry/telemetry"
	"github.com/ferrydr/ferry/telemetry/otlptest"
)

// otelVars are cleared by every test, so the machine's own settings never
// leak in.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_INSECURE",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

func clearOTEL(t *testing.T) {
	for _, v := range otelVars {
		t.Setenv(v, "")
	}
}

// routed is a small chi API like Ferry's: the route pattern is known only
// once routed, where a middleware names the span by it.
func routed() http.Handler {
	mux := chi.NewRouter()
	mux.Group(func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				telemetry.NameSpan(r.Context(), r.Method, chi.RouteContext(r.Context()).RoutePattern())
				next.ServeHTTP(w, r)
			})
		})
		r.Get("/v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
		r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	})
	return mux
}

// With no OTEL_TRACES_EXPORTER, tracing is off even where an endpoint is
// set: no provider, no interceptor, the handler as it was, and nothing
// reaches the endpoint.
func TestTracingOffByDefault(t *testing.T) {
	clearOTEL(t)
	rc := otlptest.NewHTTP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.Endpoint)
	for _, exporter := range []string{"", "none"} {
		t.Setenv("OTEL_TRACES_EXPORTER", exporter)
		shutdown, err := telemetry.SetupTracing(context.Background(), "ferry-test", nil)
		require.NoError(t, err)
		require.False(t, telemetry.TracingEnabled())
		require.Nil(t, telemetry.ClientInterceptors())
		h := routed()
		require.Equal(t, h, telemetry.HTTPHandler(h, "api"), "the handler is left as it is")
		srv := httptest.NewServer(telemetry.HTTPHandler(h, "api"))
		resp, err := http.Get(srv.URL + "/v1/runs/r1")
		require.NoError(t, err)
		resp.Body.Close()
		srv.Close()
		_, span := otel.Tracer("t").Start(context.Background(), "x")
		require.False(t, span.IsRecording())
		span.End()
		require.NoError(t, shutdown(context.Background()))
	}
	// Disabled wins over an exporter.
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	shutdown, err := telemetry.SetupTracing(context.Background(), "ferry-test", nil)
	require.NoError(t, err)
	require.False(t, telemetry.TracingEnabled())
	require.NoError(t, shutdown(context.Background()))
	require.Zero(t, rc.Requests(), "no exporter was built, so none sent")
}

// Values Ferry cannot honour are refused, naming the variable.
func TestTracingRefusesWhatItCannotDo(t *testing.T) {
	clearOTEL(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	_, err := telemetry.SetupTracing(context.Background(), "ferry-test", nil)
	require.ErrorContains(t, err, "OTEL_TRACES_EXPORTER")
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, err = telemetry.SetupTracing(context.Background(), "ferry-test", nil)
	require.ErrorContains(t, err, "OTEL_EXPORTER_OTLP_PROTOCOL")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift")
	_, err = telemetry.SetupTracing(context.Background(), "ferry-test", nil)
	require.ErrorContains(t, err, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	require.False(t, telemetry.TracingEnabled())
}

// OTEL_TRACES_EXPORTER=otlp sends the API's spans over either protocol to
// the endpoint, named by route, under the caller's trace (W3C
// traceparent), with the service named by the variables; shutdown flushes.
func TestTracingExportsOverOTLP(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			clearOTEL(t)
			rc := otlptest.NewHTTP(t)
			if protocol == "grpc" {
				rc = otlptest.NewGRPC(t)
			}
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.Endpoint)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.name=overridden")
			t.Setenv("OTEL_SERVICE_NAME", "ferry-api-test")
			shutdown, err := telemetry.SetupTracing(context.Background(), "ferry-test", nil)
			require.NoError(t, err)
			require.True(t, telemetry.TracingEnabled())
			require.Len(t, telemetry.ClientInterceptors(), 1)

			srv := httptest.NewServer(telemetry.HTTPHandler(routed(), "api"))
			defer srv.Close()
			const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/runs/0193-abc", nil)
			require.NoError(t, err)
			req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
			req.Header.Set("Authorization", "Bearer fry_secret-token")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			resp, err = http.Get(srv.URL + "/healthz")
			require.NoError(t, err)
			resp.Body.Close()

			require.NoError(t, shutdown(context.Background()))
			require.False(t, telemetry.TracingEnabled(), "shut down")
			spans := rc.Spans()
			require.Len(t, spans, 1, "one span: the probe is not traced")
			s := spans[0]
			require.Equal(t, "GET /v1/runs/{id}", s.Name)
			require.Equal(t, "/v1/runs/{id}", s.Attributes["http.route"])
			require.Equal(t, traceID, s.TraceID)
			require.Equal(t, "00f067aa0ba902b7", s.ParentSpanID)
			require.Equal(t, "ferry-api-test", s.Service)
			require.Equal(t, "test", s.Resource["deployment.environment"])
			require.NotContains(t, string(rc.Raw()), "fry_secret-token")
		})
	}
}

// Without OTEL_SERVICE_NAME the service is the one Ferry names.
func TestTracingDefaultServiceName(t *testing.T) {
	clearOTEL(t)
	rc := otlptest.NewHTTP(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rc.Endpoint+"/v1/traces")
	shutdown, err := telemetry.SetupTracing(context.Background(), "ferry-worker", nil)
	require.NoError(t, err)
	_, span := otel.Tracer("t").Start(context.Background(), "work")
	span.End()
	require.NoError(t, shutdown(context.Background()))
	spans := rc.Spans()
	require.Len(t, spans, 1)
	require.Equal(t, "ferry-worker", spans[0].Service)
}

// The SDK's own errors (a collector refusing the spans) are lines of the
// process's logger, not the standard log package's.
func TestTracingErrorsAreLogLines(t *testing.T) {
	clearOTEL(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer refusing.Close()
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", refusing.URL)
	var logs bytes.Buffer
	shutdown, err := telemetry.SetupTracing(context.Background(), "ferry-test", telemetry.NewLogger(&logs, "json", slog.LevelInfo))
	require.NoError(t, err)
	_, span := otel.Tracer("t").Start(context.Background(), "refused")
	span.End()
	_ = shutdown(context.Background())
	lines := jsonLines(t, &logs)
	require.NotEmpty(t, lines)
	require.Equal(t, "otel", lines[0]["component"])
	require.Contains(t, lines[0]["error"], "400")
}
