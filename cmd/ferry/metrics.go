package main

import (
	"context"
	"log/slog"
	"net/http"

	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/metrics"
	"github.com/ferrydr/ferry/server"
)

// withMetrics makes the API serve m on GET /metrics (viewer token).
func withMetrics(m *metrics.Registry) func(*server.Deps) {
	return func(d *server.Deps) { d.Metrics = m.Handler() }
}

// watchState makes m export the store's state (runs, replica lag, events)
// on scrape: the API's part of the metrics.
func watchState(m *metrics.Registry, st metrics.StateSource, c client.Client, cfg config.Config, logger *slog.Logger) error {
	return m.WatchState(st, metrics.StateOptions{Temporal: c, MonitorInterval: cfg.MonitorInterval, Logger: logger})
}

// serveWorkerMetrics serves a worker's metrics on FERRY_METRICS_ADDR, when
// set; the channel reports a listener that stopped with an error (nil
// channel, never ready, when off).
func serveWorkerMetrics(ctx context.Context, cfg config.Config, m *metrics.Registry, logger *slog.Logger) <-chan error {
	if cfg.MetricsAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	errc := make(chan error, 1)
	go func() {
		if err := serveHTTP(ctx, cfg.MetricsAddr, mux, logger, "metrics (FERRY_METRICS_ADDR)"); err != nil {
			errc <- err
		}
	}()
	return errc
}
