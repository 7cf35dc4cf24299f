package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// BackendLister is what EnsureMonitors reads of the inventory.
type BackendLister interface {
	ListBackends(ctx context.Context, p ferry.Page) ([]ferry.Backend, string, error)
}

// EnsureMonitors starts the replication monitor of every backend in the
// inventory that has none running, and leaves running ones as they are
// (their interval included): it is safe to call at every start-up and again
// after the inventory changed. A monitor whose backend left the inventory
// ends by itself. interval 0 means the monitor's default (5 minutes).
func EnsureMonitors(ctx context.Context, c client.Client, st BackendLister, taskQueue string, interval time.Duration) error {
	page := ferry.Page{Limit: 500}
	var errs []error
	for {
		backends, next, err := st.ListBackends(ctx, page)
		if err != nil {
			return fmt.Errorf("ensure monitors: list backends: %w", err)
		}
		for _, b := range backends {
			if err := ensureMonitor(ctx, c, b, taskQueue, interval); err != nil {
				errs = append(errs, err)
			}
		}
		if next == "" {
			break
		}
		page.Token = next
	}
	return errors.Join(errs...)
}

func ensureMonitor(ctx context.Context, c client.Client, b ferry.Backend, taskQueue string, interval time.Duration) error {
	opts := client.StartWorkflowOptions{
		ID:        workflows.MonitorWorkflowID(b.Name),
		TaskQueue: taskQueue,
		// One monitor per backend: a running one is left alone.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchKind.ValueSet(ferry.KindMonitor), workflows.SearchSite.ValueSet(b.Site)),
		StaticSummary: "replication monitor of backend " + b.Name,
	}
	_, err := c.ExecuteWorkflow(ctx, opts, workflows.MonitorWorkflowName, workflows.MonitorInput{Backend: b.Name, Interval: interval})
	if err != nil {
		return fmt.Errorf("ensure monitor of backend %s: %w", b.Name, err)
	}
	return nil
}
