package bench

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The floor's workflow and activity names.
const (
	FloorWorkflowName      = "bench-floor"
	FloorChildWorkflowName = "bench-floor-child"
	NoopActivityName       = "bench-noop"
)

// FloorInput is the fan-out of an evacuation, as read from its histories:
// the parent's activity stages before and after its children and its
// activities per child, each child's stages, and how many children run at
// once.
type FloorInput struct {
	Pre         []int   `json:"pre"`
	PerChild    int     `json:"per_child"`
	Post        []int   `json:"post"`
	Children    [][]int `json:"children"`
	Concurrency int     `json:"concurrency"`
}

// Activities counts the no-op activities the floor runs.
func (in FloorInput) Activities() int {
	n := sum(in.Pre) + sum(in.Post) + in.PerChild*len(in.Children)
	for _, c := range in.Children {
		n += sum(c)
	}
	return n
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// RegisterFloor registers the floor's workflows and its no-op activity.
func RegisterFloor(r worker.Registry) {
	r.RegisterWorkflowWithOptions(FloorWorkflow, workflow.RegisterOptions{Name: FloorWorkflowName})
	r.RegisterWorkflowWithOptions(FloorChildWorkflow, workflow.RegisterOptions{Name: FloorChildWorkflowName})
	r.RegisterActivityWithOptions(Noop, activity.RegisterOptions{Name: NoopActivityName})
}

// Noop does nothing: the floor measures Temporal, not work.
func Noop(context.Context) error { return nil }

func noopOpts(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute})
}

// runStages runs each stage's no-op activities at once, one stage after
// the other.
func runStages(ctx workflow.Context, stages []int) error {
	ctx = noopOpts(ctx)
	for _, n := range stages {
		futs := make([]workflow.Future, n)
		for i := range futs {
			futs[i] = workflow.ExecuteActivity(ctx, NoopActivityName)
		}
		for _, f := range futs {
			if err := f.Get(ctx, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// FloorWorkflow is the least a Temporal workflow can do with an
// evacuation's fan-out: the parent's own activities, then its children in
// a sliding window of Concurrency, each started child getting the parent's
// per-child activities at once, then the parent's last activities.
func FloorWorkflow(ctx workflow.Context, in FloorInput) error {
	if err := runStages(ctx, in.Pre); err != nil {
		return err
	}
	conc := max(in.Concurrency, 1)
	sem := workflow.NewSemaphore(ctx, int64(conc))
	wg := workflow.NewWaitGroup(ctx)
	errs := make([]error, len(in.Children))
	self := workflow.GetInfo(ctx).WorkflowExecution.ID
	for i, stages := range in.Children {
		if err := sem.Acquire(ctx, 1); err != nil {
			return err
		}
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			defer sem.Release(1)
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: fmt.Sprintf("%s-child-%03d", self, i)})
			fut := workflow.ExecuteChildWorkflow(cctx, FloorChildWorkflowName, stages)
			if err := fut.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
				errs[i] = err
				return
			}
			if in.PerChild > 0 {
				if err := runStages(ctx, []int{in.PerChild}); err != nil {
					errs[i] = err
				}
			}
			if err := fut.Get(ctx, nil); err != nil && errs[i] == nil {
				errs[i] = err
			}
		})
	}
	wg.Wait(ctx)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return runStages(ctx, in.Post)
}

// FloorChildWorkflow runs one child's stages of no-op activities.
func FloorChildWorkflow(ctx workflow.Context, stages []int) error {
	return runStages(ctx, stages)
}
