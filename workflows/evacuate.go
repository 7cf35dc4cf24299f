package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
)

func init() { register(EvacuateWorkflowName, EvacuateWorkflow) }

// EvacuateWorkflowName is the evacuation of a site.
const EvacuateWorkflowName = "evacuate"

// DefaultEvacuateConcurrency is how many groups an evacuation fails over at
// once when the request does not say.
const DefaultEvacuateConcurrency = 4

// EvacuateWorkflowID is the workflow id of a site's evacuation: one at a
// time per site. The evacuation holds no group itself; each of its child
// failovers holds its own group under GroupWorkflowID.
func EvacuateWorkflowID(site string) string { return "ferry-site-" + site }

// EvacuateStep names the step of one group's failover in an evacuation.
func EvacuateStep(group string) string { return "failover:" + group }

// EvacuateInput starts an evacuation.
type EvacuateInput struct {
	Site string `json:"site"`
	Mode string `json:"mode"` // ferry.ModePlanned or ferry.ModeUnplanned
	// Concurrency bounds the group failovers running at once (default 4).
	Concurrency int    `json:"concurrency,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// SkipApproval waives the one approval the evacuation asks for.
	SkipApproval bool `json:"skip_approval,omitempty"`
	// MaxAttempts is passed to every group's failover.
	MaxAttempts int `json:"max_attempts,omitempty"`
}

// evacuation is one evacuation run: the runner's machinery (steering,
// steps, the record) and the table of its groups' failovers.
type evacuation struct {
	runner
	in   EvacuateInput
	plan activities.EvacuationPlan
	// epoch is the fencing epoch every group of an unplanned evacuation
	// fences under, so that concurrent failovers of groups sharing a
	// backend agree on it instead of racing each other's epochs.
	epoch int64
	// lastVerified is when the latest group reached verified service.
	lastVerified time.Time
}

// EvacuateWorkflow fails every group that runs at a site over to its other
// site, each as a child failover under the group's own workflow id (so each
// holds its group's lock and is steerable on its own): highest priority
// first, at most Concurrency at once, one group's failure never stopping the
// others. The run's Children table shows every group's outcome as it
// happens.
//
// Abort starts no further group and requests cancellation of the running
// ones: a group before its promote rolls back, one after ends aborted where
// it stood. If the evacuation itself is terminated, running groups go on
// (ParentClosePolicy ABANDON): a group failover cut in half by its parent's
// death would be worse than one that finishes.
func EvacuateWorkflow(ctx workflow.Context, in EvacuateInput) (ferry.Run, error) {
	info := workflow.GetInfo(ctx)
	if in.Mode == "" {
		in.Mode = ferry.ModePlanned
	}
	if in.Concurrency <= 0 {
		in.Concurrency = DefaultEvacuateConcurrency
	}
	w := &evacuation{in: in, epoch: info.WorkflowStartTime.UnixNano()}
	run := ferry.Run{Kind: ferry.KindEvacuate, Site: in.Site, Mode: in.Mode, RequestedBy: in.RequestedBy}
	if err := w.begin(ctx, run, in.MaxAttempts, w.commitStep, StepPrecheck, StepApproval); err != nil {
		return ferry.Run{}, err
	}
	return w.end(ctx, w.execute(ctx))
}

func (w *evacuation) execute(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	if err := w.approval(ctx); err != nil {
		return err
	}
	return w.failoverAll(ctx)
}

func (w *evacuation) precheck(ctx workflow.Context) error {
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.EvacuationGroups, activities.EvacuationInput{Site: w.in.Site}).Get(ctx, &w.plan)
	if err != nil {
		return err
	}
	activities.SortEvacuation(w.plan.Groups) // the order is the contract
	w.run.Children = make([]ferry.ChildRun, len(w.plan.Groups))
	names := make([]string, len(w.plan.Groups))
	for i, g := range w.plan.Groups {
		w.run.Children[i] = ferry.ChildRun{Group: g.Name, Priority: g.Priority, State: ferry.RunPending,
			WorkflowID: GroupWorkflowID(g.Name)}
		names[i] = fmt.Sprintf("%s (priority %d, to %s)", g.Name, g.Priority, g.TargetSite)
		w.expect(EvacuateStep(g.Name))
	}
	w.expect(StepRecord)
	note := fmt.Sprintf("%d groups run at %s, in order: %s; at most %d at once",
		len(names), w.in.Site, strings.Join(names, ", "), w.in.Concurrency)
	if len(names) == 0 {
		note = "no group runs at " + w.in.Site
	}
	if len(w.plan.Skipped) > 0 {
		note += "; left alone: " + strings.Join(w.plan.Skipped, ", ")
	}
	if w.in.Mode == ferry.ModeUnplanned {
		note += fmt.Sprintf("; every group fences under epoch %d", w.epoch)
	}
	w.step(StepPrecheck).Note = note
	return nil
}

// approval asks once for the whole evacuation when any of its groups'
// policies would ask; the groups' failovers then start approved.
func (w *evacuation) approval(ctx workflow.Context) error {
	st := w.step(StepApproval)
	var asking []string
	for _, g := range w.plan.Groups {
		if g.ApprovalRequired && (w.in.Mode == ferry.ModePlanned || g.ApprovalUnplanned) {
			asking = append(asking, g.Name)
		}
	}
	if len(asking) == 0 || w.in.SkipApproval {
		st.State = ferry.StepSkipped
		st.Note = "no group's approval policy asks for it"
		if len(asking) > 0 {
			st.Note = "waived by " + w.in.RequestedBy + " at start (asked by " + strings.Join(asking, ", ") + ")"
		}
		return nil
	}
	st.State, st.Started = ferry.StepRunning, timePtr(now(ctx))
	st.Note = "asked by " + strings.Join(asking, ", ")
	err := w.awaitApproval(ctx)
	st.Ended = timePtr(now(ctx))
	if err != nil {
		st.State, st.Error = ferry.StepFailed, message(err)
		return err
	}
	st.State = ferry.StepCompleted
	st.Note = joinNote(st.Note, "approved by "+w.run.Approvals[len(w.run.Approvals)-1].By+" for every group")
	return nil
}

// failoverAll runs the groups' failovers in a sliding window: the next
// group starts as soon as one of the running ones ends.
func (w *evacuation) failoverAll(ctx workflow.Context) error {
	groups := w.plan.Groups
	sem := workflow.NewSemaphore(ctx, int64(w.in.Concurrency))
	cctx, cancel := workflow.WithCancel(ctx)
	// An operator's abort cancels what runs (steering calls cancelStep).
	w.cancelStep = cancel
	defer func() { w.cancelStep = nil }()
	wg := workflow.NewWaitGroup(ctx)
	var stopErr error
	started := 0
	for i := range groups {
		if err := sem.Acquire(ctx, 1); err != nil {
			stopErr = err
			break
		}
		// A pause holds the next start (running groups go on); an abort
		// starts nothing more.
		if err := w.checkpoint(ctx); err != nil {
			sem.Release(1)
			stopErr = err
			break
		}
		started++
		wg.Add(1)
		workflow.Go(cctx, func(ctx workflow.Context) {
			defer wg.Done()
			defer sem.Release(1)
			w.failoverGroup(ctx, i)
		})
	}
	// Wait for the running children even when the evacuation is being
	// cancelled: their outcome belongs in its record.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	wg.Wait(dctx)
	w.cancelStep = nil
	for i := started; i < len(groups); i++ {
		c := &w.run.Children[i]
		c.State, c.Message = ferry.RunAborted, "not started: the evacuation was aborted"
		st := w.step(EvacuateStep(c.Group))
		st.State, st.Note = ferry.StepSkipped, "not started: the evacuation was aborted"
	}
	if stopErr != nil {
		return stopErr
	}
	if w.abortRequested {
		return errAborted
	}
	var failed []string
	for _, c := range w.run.Children {
		if c.State != ferry.RunCompleted {
			failed = append(failed, c.Group+" ("+c.State+")")
		}
	}
	if len(failed) > 0 {
		if len(failed) < len(groups) {
			w.flag("partial")
		}
		return fmt.Errorf("%d of %d groups not failed over: %s", len(failed), len(groups), strings.Join(failed, ", "))
	}
	return nil
}

// failoverGroup runs one group's failover as a child workflow and writes
// its outcome into the table and its step.
func (w *evacuation) failoverGroup(ctx workflow.Context, i int) {
	g := w.plan.Groups[i]
	c := &w.run.Children[i]
	st := w.step(EvacuateStep(g.Name))
	st.State, st.Started, st.Attempts = ferry.StepRunning, timePtr(now(ctx)), 1
	c.State = ferry.RunRunning
	in := FailoverInput{
		Group: g.Name, Mode: w.in.Mode, TargetSite: g.TargetSite, RequestedBy: w.in.RequestedBy,
		// The evacuation asked (or was told not to ask) once for all.
		SkipApproval: true,
		MaxAttempts:  w.in.MaxAttempts,
	}
	if w.in.Mode == ferry.ModeUnplanned {
		in.FenceEpoch = w.epoch
	}
	opts := workflow.ChildWorkflowOptions{
		WorkflowID:            GroupWorkflowID(g.Name),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		// On abort, wait for the child to roll back or stop, so its
		// outcome is known before the evacuation records its own.
		WaitForCancellation: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchKind.ValueSet(ferry.KindFailover), SearchGroup.ValueSet(g.Name), SearchSite.ValueSet(g.TargetSite)),
		StaticSummary: fmt.Sprintf("%s failover of %s to %s (evacuation of %s)", w.in.Mode, g.Name, g.TargetSite, w.in.Site),
	}
	fut := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), FailoverWorkflowName, in)
	var exec workflow.Execution
	if err := fut.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		st.Ended = timePtr(now(ctx))
		st.State = ferry.StepFailed
		c.State = ferry.RunFailed
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			// The group's lock is held by another run: a conflict, as the
			// API's 409, not a failure of the evacuation's own.
			c.Message = fmt.Sprintf("conflict: group %q already has a running run (workflow %s); not failed over", g.Name, GroupWorkflowID(g.Name))
			w.flag("conflict:" + g.Name)
		} else {
			c.Message = "could not start: " + message(err)
		}
		st.Error = c.Message
		return
	}
	c.RunID, c.WorkflowID = exec.RunID, exec.ID
	// The child's record exists from its start, so the API lists it and
	// shows its live progress like any run.
	rec := ferry.Run{ID: exec.RunID, WorkflowID: exec.ID, Kind: ferry.KindFailover, Group: g.Name, Site: g.TargetSite,
		Mode: w.in.Mode, State: ferry.RunRunning, RequestedBy: w.in.RequestedBy, Created: now(ctx)}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := workflow.ExecuteActivity(w.opts(dctx, "short"), a.CreateRunRecord, rec).Get(dctx, nil); err != nil {
		st.Note = joinNote(st.Note, "start record not stored: "+message(err))
	}

	var res ferry.Run
	err := fut.Get(ctx, &res)
	st.Ended = timePtr(now(ctx))
	switch {
	case err != nil && isCanceled(err):
		c.State, c.Message = ferry.RunAborted, "canceled before it recorded an outcome"
	case err != nil:
		c.State, c.Message = ferry.RunFailed, message(err)
	default:
		c.State, c.Message = res.State, res.Message
		c.RTOSeconds, c.WritesLost = res.RTOSeconds, res.WritesLost
		w.account(res)
	}
	if c.State == ferry.RunCompleted {
		st.State = ferry.StepCompleted
		st.Note = "completed"
		if c.RTOSeconds != nil {
			st.Note = fmt.Sprintf("completed, RTO %.1fs", *c.RTOSeconds)
		}
		return
	}
	st.State = ferry.StepFailed
	st.Error = c.State
	if c.Message != "" {
		st.Error += ": " + c.Message
	}
}

// account folds one group's outcome into the evacuation's RPO, RTO and
// lost writes: the RPO is the worst group's, the RTO runs until the last
// group was verified, the writes lost add up (-1 once any group cannot
// tell).
func (w *evacuation) account(res ferry.Run) {
	if res.RPOSeconds != nil && (w.run.RPOSeconds == nil || *res.RPOSeconds > *w.run.RPOSeconds) {
		v := *res.RPOSeconds
		w.run.RPOSeconds = &v
	}
	if res.WritesLost != nil {
		sum := *res.WritesLost
		if w.run.WritesLost != nil {
			if *w.run.WritesLost < 0 || sum < 0 {
				sum = -1
			} else {
				sum += *w.run.WritesLost
			}
		}
		w.run.WritesLost = &sum
	}
	if res.State == ferry.RunCompleted && res.RTOSeconds != nil {
		verified := res.Created.Add(time.Duration(*res.RTOSeconds * float64(time.Second)))
		if verified.After(w.lastVerified) {
			w.lastVerified = verified
			rto := verified.Sub(w.run.Created).Seconds()
			w.run.RTOSeconds = &rto
		}
	}
}
