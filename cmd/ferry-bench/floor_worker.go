package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/ferrydr/ferry/bench"
	"github.com/ferrydr/ferry/config"
)

// floorWorker is the floor's worker process: the same Temporal settings
// and worker tuning as `ferry worker` (FERRY_ variables), the floor's
// workflows and no-op activity instead of Ferry's.
func floorWorker(ctx context.Context) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace,
		Logger: tlog.NewStructuredLogger(logger.With("component", "temporal"))})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	w := worker.New(c, cfg.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize:     cfg.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: cfg.MaxConcurrentWorkflowTasks,
		MaxConcurrentWorkflowTaskPollers:       cfg.WorkflowTaskPollers,
		MaxConcurrentActivityTaskPollers:       cfg.ActivityTaskPollers,
	})
	bench.RegisterFloor(w)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start floor worker: %w", err)
	}
	logger.Info(bench.FloorWorkerReady, "task_queue", cfg.TaskQueue)
	<-ctx.Done()
	w.Stop()
	return nil
}
