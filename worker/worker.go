// Package worker wires Ferry's workflows and activities into a Temporal
// worker. Concrete adapters are chosen by the caller (cmd/ferry) and arrive
// here as drivers.Set.
package worker

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/telemetry"
	"github.com/ferrydr/ferry/workflows"
)

// Options tunes a worker; zero values take the SDK's defaults.
type Options struct {
	MaxConcurrentActivities    int
	MaxConcurrentWorkflowTasks int
	// Pollers are the long polls kept open per task kind.
	WorkflowTaskPollers int
	ActivityTaskPollers int
	// MaxConcurrentPerBackend bounds the batch calls to one storage
	// backend at once, unless acts brings its own bound (0: none).
	MaxConcurrentPerBackend int
	// MaxBootsPerTier bounds the servers of one tier that boot at once,
	// unless acts sets its own (0: the whole tier).
	MaxBootsPerTier int
}

// New returns a worker for taskQueue with every Ferry workflow and activity
// registered. Start it with Run or Start.
func New(c client.Client, taskQueue string, acts *activities.Activities, o Options) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize:     o.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: o.MaxConcurrentWorkflowTasks,
		MaxConcurrentWorkflowTaskPollers:       o.WorkflowTaskPollers,
		MaxConcurrentActivityTaskPollers:       o.ActivityTaskPollers,
		// The run's group on every workflow and activity log line; the
		// client's tracing interceptors, when on, come before it.
		Interceptors: []interceptor.WorkerInterceptor{telemetry.WorkerInterceptor()},
	})
	Register(w, tuned(acts, o))
	return w
}

// tuned returns acts with the options' per-backend bound and boot wave,
// unless acts brings its own; acts itself is left as it is.
func tuned(acts *activities.Activities, o Options) *activities.Activities {
	if (acts.PerBackend != nil || o.MaxConcurrentPerBackend <= 0) && (acts.BootWave != 0 || o.MaxBootsPerTier <= 0) {
		return acts
	}
	t := *acts
	if t.PerBackend == nil {
		t.PerBackend = activities.NewBackendLimit(o.MaxConcurrentPerBackend)
	}
	if t.BootWave == 0 {
		t.BootWave = o.MaxBootsPerTier
	}
	return &t
}

// Register registers every workflow under its stable name, so renaming a Go
// function never breaks a running history, and the activities struct.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	for _, wf := range workflows.All() {
		r.RegisterWorkflowWithOptions(wf.Func, workflow.RegisterOptions{Name: wf.Name})
	}
	r.RegisterActivity(acts)
}
