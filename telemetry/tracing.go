// Package telemetry is Ferry's tracing and structured logging: an
// OpenTelemetry tracer set up from the standard OTEL_ variables (off unless
// they ask for it), the Temporal and HTTP instrumentation that uses it, and
// a log/slog handler that puts the request, the run, its group and the
// trace on every line. docs/observability.md is the operator's side.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentation names Ferry's own tracers.
const instrumentation = "github.com/ferrydr/ferry"

// propagator is W3C trace context, on HTTP and in Temporal headers alike.
// Not baggage: whatever a caller sent in it (up to 8 KB of anything) would
// be written into every workflow's and activity's headers in the history.
var propagator = propagation.TraceContext{}

// active is the process's tracer provider while tracing is on; nil when off.
var (
	mu     sync.Mutex
	active *sdktrace.TracerProvider
)

// SetupTracing reads the standard OTEL_ variables and, when they ask for it
// (OTEL_TRACES_EXPORTER=otlp), installs a tracer provider exporting over
// OTLP as the process's global one. Unlike the OpenTelemetry default, no
// exporter is the default: an operator who sets nothing gets no tracing and
// no connection attempts. defaultService names the service unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES does. The returned shutdown
// flushes the spans not yet sent and turns tracing off; call it on exit.
// The SDK's own errors (a collector that cannot be reached) go to logger,
// when given, so they are lines like the others (JSON with
// FERRY_LOG_FORMAT=json) rather than the standard log package's.
func SetupTracing(ctx context.Context, defaultService string, logger *slog.Logger) (shutdown func(context.Context) error, err error) {
	off := func(context.Context) error { return nil }
	exp, err := newExporter(ctx)
	if err != nil || exp == nil {
		return off, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", defaultService)))
	if err != nil {
		return off, fmt.Errorf("tracing resource: %w", err)
	}
	// The variables come last so they override the defaults above.
	env, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return off, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	if res, err = resource.Merge(res, env); err != nil {
		return off, fmt.Errorf("tracing resource: %w", err)
	}
	// The sampler is the SDK's from OTEL_TRACES_SAMPLER(_ARG); by default
	// parentbased_always_on, so a caller's sampling decision is kept.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	mu.Lock()
	active = tp
	mu.Unlock()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	if logger != nil {
		l := logger.With("component", "otel")
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { l.Warn("tracing", "error", err) }))
	}
	return func(ctx context.Context) error {
		mu.Lock()
		if active == tp {
			active = nil
			otel.SetTracerProvider(noop.NewTracerProvider())
		}
		mu.Unlock()
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("flush traces: %w", err)
		}
		return nil
	}, nil
}

// newExporter is the exporter the variables ask for, or nil for none. The
// OTLP exporters read their own variables (endpoint, headers, timeout,
// certificates, compression).
func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	switch v := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); v {
	case "", "none":
		return nil, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Ferry exports traces with \"otlp\" or not at all (\"none\", the default)", v)
	}
	name, protocol := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		name, protocol = "OTEL_EXPORTER_OTLP_PROTOCOL", os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "", "http/protobuf": // the specification's default
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s=%q: Ferry speaks \"grpc\" or \"http/protobuf\"", name, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// WithoutOTEL is env less the OTEL_ variables: the environment of a child
// process (the Temporal dev server of `ferry dev`) that must not take
// Ferry's tracing settings for its own; Temporal's server speaks only gRPC
// and refuses to start on other values.
func WithoutOTEL(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return out
}

// TracingEnabled says whether SetupTracing turned tracing on.
func TracingEnabled() bool {
	mu.Lock()
	defer mu.Unlock()
	return active != nil
}

func tracerProvider() trace.TracerProvider {
	mu.Lock()
	defer mu.Unlock()
	if active == nil {
		return nil
	}
	return active
}

// ClientInterceptors are the Temporal client's interceptors for tracing:
// none when tracing is off. A worker made from the client inherits them, so
// workflows and activities are traced too, each under the span that
// started its workflow (an API request's, for a run started through the
// API).
func ClientInterceptors() []interceptor.ClientInterceptor {
	tp := tracerProvider()
	if tp == nil {
		return nil
	}
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tp.Tracer("go.temporal.io/sdk"),
		TextMapPropagator: propagator,
	})
	if err != nil {
		// It fails only on options it cannot default; ours are complete.
		panic("telemetry: temporal tracing interceptor: " + err.Error())
	}
	return []interceptor.ClientInterceptor{i}
}

// untraced are the paths that probes and scrapers call every few seconds:
// spans of them would bury the requests an operator traces.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// HTTPHandler traces h's requests when tracing is on (h itself when off).
// The span is named by the method until the route is known: NameSpan,
// called once routed, names it by the route's pattern, so ids in paths do
// not become span names. No header is recorded, so no Authorization.
func HTTPHandler(h http.Handler, operation string) http.Handler {
	tp := tracerProvider()
	if tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untraced[r.URL.Path] }),
	)
}

// NameSpan names the request's server span by its route pattern (e.g.
// "GET /v1/runs/{id}") and records the route.
func NameSpan(ctx context.Context, method, route string) {
	span := trace.SpanFromContext(ctx)
	if route == "" || !span.IsRecording() {
		return
	}
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.route", route))
}
