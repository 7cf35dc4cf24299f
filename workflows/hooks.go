package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
)

// hookSteps lists the steps of g's hooks at point, for a run's plan.
func hookSteps(g ferry.Group, point, tier string) []string {
	var out []string
	for _, h := range g.Hooks {
		if h.Point == point {
			out = append(out, HookStep(h, tier))
		}
	}
	return out
}

// HookStep names the step of a hook in the run record; hooks after a tier
// run once per tier, named for it.
func HookStep(h ferry.Hook, tier string) string {
	if tier != "" {
		return "hook:" + h.Name + "@" + tier
	}
	return "hook:" + h.Name
}

// hooks runs the group's hooks registered at point, in the order the group
// lists them, each as a step of the run. A hook's failure policy decides:
// continue records the failure and goes on; pause waits for an operator's
// retry, skip or abort; abort (the default) fails the run, which rolls back
// before the point of no return.
func (w *runner) hooks(ctx workflow.Context, point string, extra map[string]string) error {
	for _, h := range w.group.Hooks {
		if h.Point != point {
			continue
		}
		if err := w.hook(ctx, point, h, extra); err != nil {
			return err
		}
	}
	return nil
}

func (w *runner) hook(ctx workflow.Context, point string, h ferry.Hook, extra map[string]string) error {
	runCtx := map[string]string{
		"run_id": w.runID, "kind": w.run.Kind, "group": w.run.Group, "site": w.run.Site,
		"mode": w.run.Mode, "point": point, "hook": h.Name,
	}
	for k, v := range extra {
		runCtx[k] = v
	}
	timeout := time.Duration(h.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Minute
	}
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: timeout + 10*time.Second,
		// A hook is not assumed idempotent: it runs once per attempt the
		// operator asks for, never again behind their back.
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	}
	name := HookStep(h, extra["tier"])
	run := func(ctx workflow.Context) error {
		var res activities.HookResult
		// On the step's context, so an abort cuts a slow hook short.
		hctx := workflow.WithActivityOptions(ctx, opts)
		err := workflow.ExecuteActivity(hctx, a.RunHook, activities.HookInput{Group: w.group.Name, Hook: h, Context: runCtx}).Get(ctx, &res)
		var app *temporal.ApplicationError
		if err != nil && errors.As(err, &app) && app.HasDetails() {
			_ = app.Details(&res)
		}
		w.step(name).Output = res.Output
		return err
	}
	switch h.OnFailure {
	case ferry.HookContinue:
		err := w.doOnce(ctx, name, run)
		if err != nil {
			w.flag("hook-failed:" + h.Name)
			st := w.step(name)
			st.Note = joinNote(st.Note, "failed; the hook's policy is to continue")
		}
		return nil
	case ferry.HookPause:
		return w.doPausing(ctx, name, run)
	default:
		return w.do(ctx, name, run)
	}
}
