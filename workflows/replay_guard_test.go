package workflows_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// The replay tests are only a guard if they fail on a change that would
// break a running workflow. These tests replay a recorded failover against
// altered code registered under the same name: an unversioned change must
// be refused, the same change behind workflow.GetVersion must replay.

// insertedStep is a new first step a developer might add to the failover.
func insertedStep(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, "InsertedStep").Get(ctx, nil)
}

// replayFailover replays the recorded planned failover against fn
// registered as the failover, with every other workflow as it is.
func replayFailover(t *testing.T, fn func(workflow.Context, workflows.FailoverInput) (ferry.Run, error)) error {
	t.Helper()
	r := worker.NewWorkflowReplayer()
	for _, wf := range workflows.All() {
		if wf.Name == workflows.FailoverWorkflowName {
			continue
		}
		r.RegisterWorkflowWithOptions(wf.Func, workflow.RegisterOptions{Name: wf.Name})
	}
	r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: workflows.FailoverWorkflowName})
	return r.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join(historyDir, "planned.json"))
}

func TestReplayUnchangedFailoverSucceeds(t *testing.T) {
	require.NoError(t, replayFailover(t, workflows.FailoverWorkflow))
}

func TestReplayFailsOnUnversionedChange(t *testing.T) {
	altered := func(ctx workflow.Context, in workflows.FailoverInput) (ferry.Run, error) {
		if err := insertedStep(ctx); err != nil {
			return ferry.Run{}, err
		}
		return workflows.FailoverWorkflow(ctx, in)
	}
	err := replayFailover(t, altered)
	require.Error(t, err, "a new step replayed over an old history must fail the replay test")
	// TMPRL1100 is the SDK's code for a history the code no longer matches.
	require.ErrorContains(t, err, "TMPRL1100")
}

func TestReplayFailsOnReorderedSteps(t *testing.T) {
	// Sleeping before the run changes the first command from an activity
	// to a timer: the same kind of break as swapping two steps.
	altered := func(ctx workflow.Context, in workflows.FailoverInput) (ferry.Run, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return ferry.Run{}, err
		}
		return workflows.FailoverWorkflow(ctx, in)
	}
	require.ErrorContains(t, replayFailover(t, altered), "TMPRL1100")
}

func TestReplaySucceedsOnVersionedChange(t *testing.T) {
	// The way docs/failover.md says to make the change: old histories take
	// the DefaultVersion branch, new runs the new one.
	versioned := func(ctx workflow.Context, in workflows.FailoverInput) (ferry.Run, error) {
		if workflow.GetVersion(ctx, "inserted-step", workflow.DefaultVersion, 1) == 1 {
			if err := insertedStep(ctx); err != nil {
				return ferry.Run{}, err
			}
		}
		return workflows.FailoverWorkflow(ctx, in)
	}
	require.NoError(t, replayFailover(t, versioned))
}
