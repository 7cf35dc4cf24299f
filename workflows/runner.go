package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
)

// runner is the machinery every run kind shares: the operator's steering,
// the step loop, activity options, the saga of compensations before the
// point of no return, and the record written when the run ends.
type runner struct {
	steering
	runID       string
	maxAttempts int
	// prechecked: past the precheck, so a failure rolls back.
	prechecked bool
	// commitStep is the point of no return (promote); committed is set once
	// it has changed anything. From then on failures pause the run.
	commitStep    string
	committed     bool
	committedNote string
	compensations []compensation
	// activeSite, when committed, is recorded as the group's active site.
	activeSite string
	// group is the run's protection group, once known: its hooks run at
	// the named points.
	group ferry.Group
}

// begin starts a run's bookkeeping: its record, its point of no return,
// the operator's query and updates, and the steps known up front.
func (w *runner) begin(ctx workflow.Context, run ferry.Run, maxAttempts int, commitStep string, steps ...string) error {
	info := workflow.GetInfo(ctx)
	w.runID, w.maxAttempts, w.commitStep = info.WorkflowExecution.RunID, maxAttempts, commitStep
	run.ID, run.WorkflowID, run.State = w.runID, info.WorkflowExecution.ID, ferry.RunRunning
	run.Created = info.WorkflowStartTime.UTC()
	w.run = run
	if err := w.setup(ctx); err != nil {
		return err
	}
	publishState(ctx, func() string { return w.run.State })
	w.expect(steps...)
	return nil
}

// end finishes the run (rollback, final state, record) and lets an update
// that arrived at the very end return its answer. A run's outcome is its
// record, never a workflow failure.
func (w *runner) end(ctx workflow.Context, err error) (ferry.Run, error) {
	w.finish(ctx, err)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return w.run, nil
}

type compensation struct {
	step string
	fn   func(ctx workflow.Context) error
}

func retryPolicy(attempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        30 * time.Second,
		MaximumAttempts:        attempts,
		NonRetryableErrorTypes: []string{activities.ErrPermanent, activities.ErrPrecheck},
	}
}

// Activity options, declared together. A step's activity retries a few
// times on its own; what still fails is the workflow's to handle
// (compensate before promote, pause after).
func (w *runner) opts(ctx workflow.Context, kind string) workflow.Context {
	attempts := int32(w.maxAttempts)
	if attempts <= 0 {
		attempts = 5
	}
	o := workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute, RetryPolicy: retryPolicy(attempts)}
	switch kind {
	case "long": // boots and promotes: heartbeat, so a dead worker is noticed in a minute
		o.StartToCloseTimeout = time.Hour
		o.HeartbeatTimeout = time.Minute
	case "wait": // final sync: retrying is the wait loop
		o.ScheduleToCloseTimeout = 15 * time.Minute
		o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 1.5, MaximumInterval: 5 * time.Second}
	case "record": // the record must land: retry for an hour
		o.ScheduleToCloseTimeout = time.Hour
		o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	case "compensate": // undoing must not give up lightly
		o.RetryPolicy = retryPolicy(10)
	}
	return workflow.WithActivityOptions(ctx, o)
}

// key is the idempotency key of a driver call: run id, step and target. An
// operator's retry of a step is a new attempt with keys of its own, so the
// driver acts again instead of replaying the failed attempt's answer.
func (w *runner) key(step, target string) string {
	for _, s := range w.run.Steps {
		if s.Name == step && s.Attempts > 1 {
			step = fmt.Sprintf("%s#%d", step, s.Attempts)
		}
	}
	return activities.Key(w.runID, step, target)
}

// What a step's failure leads to.
type onFailure int

const (
	// failDefault: returned before the point of no return (the caller
	// compensates), a pause for the operator after it.
	failDefault onFailure = iota
	// failPause: always a pause for the operator's retry, skip or abort.
	failPause
	// failReturn: recorded and returned; the caller decides.
	failReturn
)

// do runs one named step. A failure before the point of no return is
// returned, for the caller to compensate; after it the run pauses until an
// operator retries, skips or aborts the step.
func (w *runner) do(ctx workflow.Context, name string, fn func(workflow.Context) error) error {
	return w.doWith(ctx, name, failDefault, fn)
}

// doPausing runs a step whose failure always waits for an operator.
func (w *runner) doPausing(ctx workflow.Context, name string, fn func(workflow.Context) error) error {
	return w.doWith(ctx, name, failPause, fn)
}

// doOnce runs a step once and returns its error, recorded but not acted on.
func (w *runner) doOnce(ctx workflow.Context, name string, fn func(workflow.Context) error) error {
	return w.doWith(ctx, name, failReturn, fn)
}

func (w *runner) doWith(ctx workflow.Context, name string, mode onFailure, fn func(workflow.Context) error) error {
	if err := w.checkpoint(ctx); err != nil {
		return err
	}
	st := w.step(name)
	for {
		st.State, st.Started, st.Ended, st.Error = ferry.StepRunning, timePtr(now(ctx)), nil, ""
		st.Attempts++
		sctx, cancel := workflow.WithCancel(ctx)
		if name != w.commitStep {
			w.cancelStep = cancel
		} else {
			// The point of no return (promote) must not be cut in half:
			// neither an operator's abort nor a Temporal cancel reaches it.
			// A cancel is seen at the next step, after it.
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			sctx, cancel = workflow.WithCancel(dctx)
		}
		err := fn(sctx)
		w.cancelStep = nil
		cancel()
		st = w.step(name) // fn may have grown the step list and moved it
		st.Ended = timePtr(now(ctx))
		if err == nil {
			st.State = ferry.StepCompleted
			return nil
		}
		st.State = ferry.StepFailed
		st.Error = message(err)
		if w.abortRequested {
			st.Error = "aborted by operator"
			return errAborted
		}
		if mode == failReturn || (mode == failDefault && !w.committed) {
			return err
		}
		d, werr := w.awaitDecision(ctx, name, err)
		if werr != nil {
			return werr
		}
		st = w.step(name)
		switch d {
		case decideSkip:
			st.State = ferry.StepSkipped
			st.Note = "skipped by operator after: " + st.Error
			w.flag("skipped:" + name)
			return nil
		case decideAbort:
			return errAborted
		}
	}
}

// stage is one entry of a runbook: a named step, or the group's hooks at
// a point.
type stage struct {
	name string
	fn   func(workflow.Context) error
	// hook, when set, runs the group's hooks at this point instead.
	hook      string
	hookExtra map[string]string
}

func hookAt(point string, extra map[string]string) stage {
	return stage{hook: point, hookExtra: extra}
}

// stages runs a runbook's stages in order, stopping at the first error.
func (w *runner) stages(ctx workflow.Context, ss ...stage) error {
	for _, s := range ss {
		var err error
		if s.hook != "" {
			err = w.hooks(ctx, s.hook, s.hookExtra)
		} else {
			err = w.do(ctx, s.name, s.fn)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// compensate registers the undo of a step that is about to act.
func (w *runner) compensate(step string, fn func(ctx workflow.Context) error) {
	w.compensations = append(w.compensations, compensation{step: step, fn: fn})
}

// rollback runs the compensations in reverse order on a context that
// survives cancellation. An undo that keeps failing pauses the run for an
// operator instead of leaving production half changed in silence.
func (w *runner) rollback(ctx workflow.Context) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	for i := len(w.compensations) - 1; i >= 0; i-- {
		c := w.compensations[i]
		for {
			err := c.fn(ctx)
			if err == nil {
				w.step(c.step).State = ferry.StepCompensated
				break
			}
			w.run.Events = append(w.run.Events, ferry.Event{Action: "compensation-failed", By: "ferry", At: now(ctx), Step: c.step, Comment: message(err)})
			w.abortRequested = false // an abort got us here; the decision is for this undo
			d, werr := w.awaitDecision(ctx, "undo "+c.step, err)
			if werr != nil || d != decideRetry {
				w.step(c.step).Note = joinNote(w.step(c.step).Note, "undo not done: "+message(err))
				w.flag("compensation-incomplete")
				break
			}
		}
	}
	w.compensations = nil
}

// finish sets the final state, rolls back what must be, and records the run.
func (w *runner) finish(ctx workflow.Context, err error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	aborted := errors.Is(err, errAborted) || isCanceled(err)
	switch {
	case err == nil:
		w.run.State = ferry.RunCompleted
	case !w.committed && w.prechecked:
		// Before promote every failure, and an abort, puts production back.
		w.rollback(dctx)
		w.run.State = ferry.RunRolledBack
		w.run.Message = "rolled back: " + message(err)
		if aborted {
			w.run.State = ferry.RunAborted
			w.run.Message = "aborted by operator; production rolled back"
		}
		if w.hasFlag("compensation-incomplete") {
			// Saying rolled_back would be untrue: some undo was skipped.
			w.run.State = ferry.RunFailed
			w.run.Message = "rollback incomplete (see the compensated steps' notes) after: " + message(err)
		}
	case aborted:
		w.run.State = ferry.RunAborted
		w.run.Message = "aborted by operator"
		if w.committed {
			w.run.Message += " after " + w.commitStep + ": " + w.committedNote + "; the remaining steps were not run"
		}
	default:
		w.run.State = ferry.RunFailed
		w.run.Message = message(err)
	}
	if aborted && err != nil && !errors.Is(err, errAborted) {
		w.run.Events = append(w.run.Events, ferry.Event{Action: "cancel", By: "temporal", At: now(dctx)})
	}
	for i := range w.run.Steps {
		if w.run.Steps[i].State == ferry.StepPending && w.run.Steps[i].Name != StepRecord {
			w.run.Steps[i].Note = joinNote(w.run.Steps[i].Note, "not run")
		}
	}
	// The final state shows only once the record is stored: a client that
	// sees "completed" may start the group's next run at once, and must not
	// meet this one still holding the group's workflow id.
	final := w.run.State
	w.run.State = ferry.RunRunning
	w.finishing = true
	st := w.step(StepRecord)
	st.State, st.Started, st.Attempts = ferry.StepRunning, timePtr(now(dctx)), 1
	end := now(dctx)
	rec := w.run
	rec.State, rec.Ended = final, &end
	rec.Steps = append([]ferry.Step(nil), w.run.Steps...)
	for i := range rec.Steps {
		if rec.Steps[i].Name == StepRecord {
			rec.Steps[i].State, rec.Steps[i].Ended = ferry.StepCompleted, timePtr(end)
		}
	}
	in := activities.RecordInput{Run: rec}
	if w.committed && w.activeSite != "" {
		in.ActiveSite = w.activeSite
	}
	rerr := workflow.ExecuteActivity(w.opts(dctx, "record"), a.RecordRun, in).Get(dctx, nil)
	w.run = rec
	if rerr != nil {
		st := w.step(StepRecord)
		st.State, st.Error = ferry.StepFailed, message(rerr)
	}
}

// each runs fn(0..n-1) concurrently in workflow goroutines and returns the
// errors joined, after all have finished.
func (w *runner) each(ctx workflow.Context, n int, fn func(ctx workflow.Context, i int) error) error {
	errs := make([]error, n)
	wg := workflow.NewWaitGroup(ctx)
	for i := 0; i < n; i++ {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			errs[i] = fn(ctx, i)
		})
	}
	wg.Wait(ctx)
	return errors.Join(errs...)
}

func isCanceled(err error) bool {
	var c *temporal.CanceledError
	return errors.As(err, &c)
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
