package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
)

// ChangeSearchState is the workflow.GetVersion change id of the
// FerryRunState upserts: histories recorded before it issue none, and
// replay down the DefaultVersion branch (no upserts).
const ChangeSearchState = "search-run-state"

// publishState keeps the run's FerryRunState search attribute equal to
// state() for the rest of the workflow: a workflow goroutine waits for the
// state to change and upserts it, so the many places that set a run's state
// need not each remember to. Its context is disconnected, so the final
// state of a cancelled run is still published; Temporal's dispatcher runs
// the goroutine in the same pass in which the workflow returns, so the last
// upsert precedes the completion.
func publishState(ctx workflow.Context, state func() string) {
	if workflow.GetVersion(ctx, ChangeSearchState, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(ctx workflow.Context) {
		published := ""
		for {
			if err := workflow.Await(ctx, func() bool { return state() != published }); err != nil {
				return
			}
			published = state()
			// An unregistered attribute fails the workflow task (and is
			// retried), not this call: the API and `ferry dev` register it.
			_ = workflow.UpsertTypedSearchAttributes(ctx, SearchState.ValueSet(published))
		}
	})
}

// monitorState is a replication monitor's state for FerryRunState: it runs
// until its backend leaves the inventory, and an operator may pause it.
func (m *monitor) monitorState() string {
	switch {
	case m.gone:
		return ferry.RunCompleted
	case m.state.Paused:
		return ferry.RunPaused
	}
	return ferry.RunRunning
}
