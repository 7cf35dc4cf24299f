package bench

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// TestFloorRunsTheFanOut: the floor executes exactly the fan-out it is
// given: the parent's stages, one child per entry with its stages, and the
// per-child activities.
func TestFloorRunsTheFanOut(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var calls atomic.Int64
	env.RegisterWorkflowWithOptions(FloorWorkflow, workflow.RegisterOptions{Name: FloorWorkflowName})
	env.RegisterWorkflowWithOptions(FloorChildWorkflow, workflow.RegisterOptions{Name: FloorChildWorkflowName})
	env.RegisterActivityWithOptions(func(context.Context) error { calls.Add(1); return nil }, activity.RegisterOptions{Name: NoopActivityName})
	in := FloorInput{Pre: []int{1}, PerChild: 1, Post: []int{1}, Children: [][]int{{1, 2, 2}, {1, 3}, {2}}, Concurrency: 2}
	env.ExecuteWorkflow(FloorWorkflowName, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, int64(in.Activities()), calls.Load())
}
