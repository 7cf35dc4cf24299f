// Package metrics holds Ferry's Prometheus metrics, on a registry of each
// process's own (never the global default, so two services in one process,
// or one test after another, never collide):
//
//   - what the worker does: driver calls (Instrument), run and step
//     durations when a run's record is written (RunRecorded);
//   - what the store says, computed by the API when Prometheus scrapes
//     (WatchState): runs by kind and state, paused runs, replica lag and
//     RPO compliance, RPO-violation events, when each group was last
//     observed by its monitor;
//   - the Temporal SDK's own metrics (temporal_*) of the clients that use
//     ClientOptions, through the SDK's OpenTelemetry handler and the
//     OpenTelemetry Prometheus exporter.
//
// docs/metrics.md lists every metric; docs/alerts/ferry.rules.yml alerts on
// them.
package metrics

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Registry is one process's metrics and the handler that serves them.
type Registry struct {
	reg      *prometheus.Registry
	drivers  *driverMetrics
	runs     *runMetrics
	temporal client.MetricsHandler
}

// New returns a registry with the Go runtime's and the process's
// collectors, the worker's driver and run metrics, and a Temporal metrics
// handler. Series appear once something is observed: a process that runs
// no worker shows no driver calls.
func New() (*Registry, error) {
	reg := prometheus.NewRegistry()
	r := &Registry{reg: reg, drivers: newDriverMetrics(), runs: newRunMetrics()}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.drivers.latency, r.drivers.errors,
		r.runs.duration, r.runs.steps,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	// The SDK reports through OpenTelemetry instruments; the exporter is a
	// collector of this registry, read at each scrape. Counters are made
	// monotonic so that they are Prometheus counters (temporal_*_total),
	// which rate() and increase() expect.
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: temporal exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	r.temporal = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                mp.Meter("go.temporal.io/sdk"),
		UseMonotonicCounters: true,
		// The SDK's default panics on an instrument it cannot make; a
		// metric is never worth a crashed worker.
		OnError: func(error) {},
	})
	return r, nil
}

// MustNew is New for callers that cannot go on without metrics (tests).
func MustNew() *Registry {
	r, err := New()
	if err != nil {
		panic(err)
	}
	return r
}

// Handler serves the registry in Prometheus' exposition format. A
// collector that fails (the store does not answer) leaves its series out
// and the rest is served: a scrape never fails as a whole.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          r.reg,
		EnableOpenMetrics: false,
	})
}

// Gatherer is the registry, for tests and for tools that read it in-process.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// TemporalHandler is the Temporal SDK metrics handler exported by this
// registry.
func (r *Registry) TemporalHandler() client.MetricsHandler { return r.temporal }

// ClientOptions makes a Temporal client report the SDK's metrics here: the
// client's own requests and, for a worker built on it, its polls, task
// slots and latencies. Nil-safe: a nil registry changes nothing.
func (r *Registry) ClientOptions(o *client.Options) {
	if r == nil {
		return
	}
	o.MetricsHandler = r.temporal
}

// register adds a collector, treating a second registration of the same
// collector as done.
func (r *Registry) register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return fmt.Errorf("metrics: register: %w", err)
	}
	return nil
}
