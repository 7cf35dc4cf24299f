package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/drivers"
)

func init() { register(DrillWorkflowName, DrillWorkflow) }

// DrillWorkflowName is the drill (test bubble) run.
const DrillWorkflowName = "drill"

// Step names of a drill, besides precheck, boot:<tier> and record.
const (
	StepBubble  = "bubble"
	StepClone   = "clone"
	StepChecks  = "checks"
	StepHold    = "hold"
	StepCleanup = "cleanup"
)

// MaxDrillHold bounds how long a drill may hold its bubble open.
const MaxDrillHold = 24 * time.Hour

// DrillScheduleID is the id of the Temporal Schedule that starts a group's
// drills.
func DrillScheduleID(group string) string { return "ferry-drill-schedule-" + group }

// DrillScheduledWorkflowID is the workflow id a group's drill schedule
// starts its drills under; Temporal appends the scheduled time. It does not
// hold the group's lock, so a scheduled drill's precheck refuses while
// another run of the group is active.
func DrillScheduledWorkflowID(group string) string { return "ferry-drill-" + group }

// DrillInput starts a drill.
type DrillInput struct {
	Group       string `json:"group"`
	RequestedBy string `json:"requested_by,omitempty"`
	// HoldSeconds keeps the bubble open for manual testing after the
	// checks, until a resume, an abort or the time limit.
	HoldSeconds int `json:"hold_seconds,omitempty"`
	// Scheduled: started by the group's drill schedule.
	Scheduled bool `json:"scheduled,omitempty"`
	// MaxAttempts bounds how often a step's activity retries by itself.
	MaxAttempts int `json:"max_attempts,omitempty"`
}

// DrillSteps lists the steps a drill of g takes, in order.
func DrillSteps(g ferry.Group, hold bool) []string {
	steps := []string{StepPrecheck, StepBubble, StepClone}
	for _, t := range g.Tiers {
		steps = append(steps, BootStep(t.Name))
	}
	steps = append(steps, StepChecks)
	if hold {
		steps = append(steps, StepHold)
	}
	steps = append(steps, hookSteps(g, ferry.HookBeforeCleanup, "")...)
	return append(steps, StepCleanup, StepRecord)
}

// drill is one drill run and what it has created so far: the cleanup
// removes exactly that.
type drill struct {
	runner
	in   DrillInput
	plan activities.DrillPlan

	bubble        string
	bubbleInDoubt *activities.DrillBubbleInput
	clones        map[string][]string // backend -> clone ids
	cloneOf       map[string]string   // resource -> clone id
	clonesInDoubt []activities.DrillCloneInput
	servers       []string
}

// DrillWorkflow tests a group's recoverability without touching
// production: a bubble network at the DR site with no route out, clones of
// the DR replicas' latest consistent point (replication keeps running),
// the clones booted tier by tier inside the bubble, the group's checks run
// from inside it, an optional hold for manual testing, and a cleanup that
// always runs (success, failure, abort, cancel, a worker lost on the way)
// and removes exactly what the drill recorded it created.
func DrillWorkflow(ctx workflow.Context, in DrillInput) (ferry.Run, error) {
	if in.RequestedBy == "" && in.Scheduled {
		in.RequestedBy = "schedule"
	}
	w := &drill{in: in, clones: map[string][]string{}, cloneOf: map[string]string{}}
	run := ferry.Run{Kind: ferry.KindDrill, Group: in.Group, RequestedBy: in.RequestedBy}
	if err := w.begin(ctx, run, in.MaxAttempts, w.commitStep, StepPrecheck); err != nil {
		return ferry.Run{}, err
	}
	if in.Scheduled {
		w.flag("scheduled")
	}

	err := w.execute(ctx)
	if w.created() && !errors.Is(err, errAborted) && !isCanceled(err) && ctx.Err() == nil {
		// The group's own steps before cleanup (collect logs from the
		// bubble, say); a failing one fails the run, never the cleanup.
		herr := w.hooks(ctx, ferry.HookBeforeCleanup, map[string]string{"bubble": w.bubble, "site": w.plan.Site})
		if err == nil {
			err = herr
		}
	}
	w.cleanup(ctx)
	return w.end(ctx, err)
}

// execute is the runbook up to the report; cleanup follows whatever it
// returns.
func (w *drill) execute(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	ss := []stage{{name: StepBubble, fn: w.createBubble}, {name: StepClone, fn: w.clone}}
	for _, t := range w.plan.Group.Tiers {
		ss = append(ss, stage{name: BootStep(t.Name), fn: func(ctx workflow.Context) error { return w.bootTier(ctx, t) }})
	}
	ss = append(ss, stage{name: StepChecks, fn: w.checks})
	if w.in.HoldSeconds > 0 {
		ss = append(ss, stage{name: StepHold, fn: w.hold})
	}
	if err := w.stages(ctx, ss...); err != nil {
		return err
	}
	if w.abortRequested {
		return errAborted // the hold was released by an abort
	}
	return nil
}

func (w *drill) precheck(ctx workflow.Context) error {
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.DrillPrecheck, activities.DrillPlanInput{
		Group: w.in.Group, Run: w.run, LockWorkflowID: GroupWorkflowID(w.in.Group),
	}).Get(ctx, &w.plan)
	if err != nil {
		return err
	}
	w.group = w.plan.Group
	w.run.Site = w.plan.Site
	for _, warn := range w.plan.Warnings {
		w.step(StepPrecheck).Note = joinNote(w.step(StepPrecheck).Note, warn)
	}
	w.expect(DrillSteps(w.plan.Group, w.in.HoldSeconds > 0)...)
	return nil
}

// inDoubt says whether a failed creation may have happened anyway: an
// attempt that timed out or was cut off, rather than one the driver
// refused.
func inDoubt(err error) bool {
	var app *temporal.ApplicationError
	return !errors.As(err, &app)
}

func (w *drill) touch(what string) { w.run.Touched = append(w.run.Touched, what) }

func (w *drill) created() bool {
	return w.bubble != "" || w.bubbleInDoubt != nil || len(w.clones) > 0 || len(w.clonesInDoubt) > 0
}

// createBubble makes the bubble network. Creations run on a disconnected
// context: an abort or a cancel waits for them to answer, so the drill
// always learns what it made.
func (w *drill) createBubble(ctx workflow.Context) error {
	in := activities.DrillBubbleInput{
		Key: w.key(StepBubble, w.plan.Site), Site: w.plan.Site, Name: "ferry-drill-" + w.plan.Group.Name,
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var id string
	if err := workflow.ExecuteActivity(w.opts(dctx, "short"), a.DrillCreateBubble, in).Get(dctx, &id); err != nil {
		if inDoubt(err) {
			w.bubbleInDoubt = &in
		}
		return err
	}
	w.bubble = id
	w.touch("bubble:" + w.plan.Site + "/" + id)
	w.step(StepBubble).Note = "bubble " + id + " at " + w.plan.Site + ", no route to production"
	return nil
}

// clone clones every batch's replicas at once, one activity per backend.
func (w *drill) clone(ctx workflow.Context) error {
	batches := w.plan.Batches
	if len(batches) == 0 {
		w.step(StepClone).Note = "the group has no volumes or shares"
		return nil
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var lag time.Duration
	err := w.each(dctx, len(batches), func(ctx workflow.Context, i int) error {
		in := activities.DrillCloneInput{Key: w.key(StepClone, batches[i].Backend), Batch: batches[i], Bubble: w.bubble}
		var out activities.DrillCloneResult
		err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.DrillCloneBatch, in).Get(ctx, &out)
		var app *temporal.ApplicationError
		if err != nil && errors.As(err, &app) && app.HasDetails() {
			_ = app.Details(&out)
		}
		for _, c := range out.Clones {
			w.clones[in.Batch.Backend] = append(w.clones[in.Batch.Backend], c.ID)
			if c.Resource != "" {
				w.cloneOf[c.Resource] = c.ID
				w.touch("clone:" + in.Batch.Backend + "/" + c.ID + " (of " + c.Resource + ")")
			} else {
				w.touch("clone:" + in.Batch.Backend + "/" + c.ID)
			}
		}
		if err != nil {
			if inDoubt(err) {
				w.clonesInDoubt = append(w.clonesInDoubt, in)
			}
			return err
		}
		if out.MaxLag > lag {
			lag = out.MaxLag
		}
		return nil
	})
	if err != nil {
		return err
	}
	// RPO: how far behind production the tested point is.
	rpo := lag.Seconds()
	w.run.RPOSeconds = &rpo
	n := 0
	for _, ids := range w.clones {
		n += len(ids)
	}
	w.step(StepClone).Note = fmt.Sprintf("%d clones at %s, up to %s behind production; replication keeps running", n, w.plan.Site, lag.Round(time.Millisecond))
	return nil
}

// bootTier boots a tier's clones inside the bubble and waits until they
// are healthy. The servers are recorded before the boot is sent: whatever
// it made lives in the bubble and goes with it.
func (w *drill) bootTier(ctx workflow.Context, t ferry.Tier) error {
	specs := make([]drivers.BootSpec, 0, len(t.Servers))
	for _, s := range t.Servers {
		spec := drivers.BootSpec{Name: s.Name, Networks: []string{w.bubble}}
		for _, v := range s.Volumes {
			id, ok := w.cloneOf[v]
			if !ok {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("server %s: volume %s has no clone", s.Name, v), activities.ErrPermanent, nil)
			}
			spec.Volumes = append(spec.Volumes, id)
		}
		specs = append(specs, spec)
	}
	for _, s := range specs {
		if !drillHas(w.servers, s.Name) {
			w.servers = append(w.servers, s.Name)
			w.touch("server:" + w.plan.Site + "/" + s.Name + " (in bubble " + w.bubble + ")")
		}
	}
	attempts := int32(w.maxAttempts)
	if attempts <= 0 {
		attempts = 5
	}
	bctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    5 * time.Second,
		// Cleanup must not destroy the bubble while a boot into it may
		// still be running: wait until a cancelled boot has stopped.
		WaitForCancellation: true,
		RetryPolicy:         retryPolicy(attempts),
	})
	return workflow.ExecuteActivity(bctx, a.DrillBoot, activities.BootInput{
		Key: w.key(BootStep(t.Name), w.plan.Site), Site: w.plan.Site, Tier: t.Name, Servers: specs,
	}).Get(ctx, nil)
}

// checks runs the group's checks from inside the bubble; the report keeps
// every result. RTO is the time from the start to a verified bubble.
func (w *drill) checks(ctx workflow.Context) error {
	g := w.plan.Group
	if len(g.Checks) == 0 {
		w.step(StepChecks).Note = "no checks defined"
	} else {
		specs := checkSpecs(g)
		var results []drivers.CheckResult
		err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.DrillChecks, activities.VerifyInput{
			Site: w.plan.Site, Network: w.bubble, Checks: specs,
		}).Get(ctx, &results)
		var app *temporal.ApplicationError
		if err != nil && errors.As(err, &app) && app.HasDetails() {
			_ = app.Details(&results)
		}
		w.run.Checks = nil
		passed := 0
		for _, r := range results {
			w.run.Checks = append(w.run.Checks, ferry.CheckOutcome{Name: r.Name, Passed: r.Passed, Detail: r.Detail})
			if r.Passed {
				passed++
			}
		}
		if err != nil {
			return err
		}
		w.step(StepChecks).Note = fmt.Sprintf("%d/%d checks passed inside bubble %s", passed, len(specs), w.bubble)
	}
	rto := now(ctx).Sub(w.run.Created).Seconds()
	w.run.RTOSeconds = &rto
	return nil
}

// hold keeps the bubble open for manual testing. The run shows as paused
// until a resume, an abort or the time limit releases it; the timer is
// Temporal's, so the wait survives a worker restart.
func (w *drill) hold(ctx workflow.Context) error {
	d := time.Duration(w.in.HoldSeconds) * time.Second
	if d > MaxDrillHold {
		d = MaxDrillHold
	}
	until := now(ctx).Add(d)
	w.pauseRequested = true
	w.run.State = ferry.RunPaused
	w.run.Message = fmt.Sprintf("holding bubble %s at %s for manual testing until %s: resume to clean up, or abort",
		w.bubble, w.plan.Site, until.Format(time.RFC3339))
	ok, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return !w.pauseRequested || w.abortRequested })
	w.pauseRequested = false
	w.run.State, w.run.Message = ferry.RunRunning, ""
	st := w.step(StepHold)
	switch {
	case w.abortRequested:
		st.Note = "released by abort"
		return nil
	case err != nil:
		return err
	case ok:
		st.Note = "released by resume"
	default:
		st.Note = fmt.Sprintf("released when the time limit (%s) passed", d)
	}
	return nil
}

// cleanup removes everything the drill recorded it created, on a context
// that survives cancellation. A cleanup that keeps failing waits for an
// operator's retry rather than leaking in silence; giving up is recorded.
func (w *drill) cleanup(ctx workflow.Context) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	st := w.step(StepCleanup)
	if !w.created() {
		st.State = ferry.StepSkipped
		st.Note = "the drill created nothing"
		return
	}
	in := activities.DrillCleanupInput{
		Key: w.key(StepCleanup, w.plan.Site), Site: w.plan.Site, Bubble: w.bubble,
		BubbleInDoubt: w.bubbleInDoubt, ClonesInDoubt: w.clonesInDoubt, Servers: w.servers,
	}
	if len(w.clones) > 0 {
		in.Clones = w.clones
	}
	for {
		st = w.step(StepCleanup)
		st.State, st.Started, st.Ended, st.Error = ferry.StepRunning, timePtr(now(ctx)), nil, ""
		st.Attempts++
		var out activities.DrillCleanupResult
		err := workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.DrillCleanup, in).Get(ctx, &out)
		st = w.step(StepCleanup)
		st.Ended = timePtr(now(ctx))
		if err == nil {
			st.State = ferry.StepCompleted
			st.Note = w.cleanupNote(out)
			return
		}
		st.State, st.Error = ferry.StepFailed, message(err)
		w.run.Events = append(w.run.Events, ferry.Event{Action: "cleanup-failed", By: "ferry", At: now(ctx), Step: StepCleanup, Comment: message(err)})
		w.abortRequested = false // the decision is about this cleanup
		d, werr := w.awaitDecision(ctx, StepCleanup, err)
		if werr != nil || d != decideRetry {
			st = w.step(StepCleanup)
			st.Note = joinNote(st.Note, "left behind: "+strings.Join(w.run.Touched, ", "))
			w.flag("cleanup-incomplete")
			return
		}
	}
}

func (w *drill) cleanupNote(out activities.DrillCleanupResult) string {
	n := 0
	backends := make([]string, 0, len(out.Clones))
	for be := range out.Clones {
		backends = append(backends, be)
	}
	sort.Strings(backends)
	for _, be := range backends {
		n += len(out.Clones[be])
		for _, id := range out.Clones[be] {
			if !drillHas(w.clones[be], id) {
				w.touch("clone:" + be + "/" + id + " (resolved at cleanup)")
			}
		}
	}
	for _, b := range out.Bubbles {
		if b != w.bubble {
			w.touch("bubble:" + w.plan.Site + "/" + b + " (resolved at cleanup)")
		}
	}
	return fmt.Sprintf("removed %d bubble(s) with %d server(s) inside, and %d clone(s) on %s",
		len(out.Bubbles), len(w.servers), n, strings.Join(backends, ", "))
}

func drillHas(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
