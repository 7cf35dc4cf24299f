package workflows

import (
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/drivers"
)

// The replication lifecycle of a protection group: protect and unprotect,
// reprotect after a failover, failback, suspend and resume. Every one of
// them runs under the group's workflow id (one mutating run per group).
const (
	ProtectWorkflowName   = "protect"
	UnprotectWorkflowName = "unprotect"
	ReprotectWorkflowName = "reprotect"
	FailbackWorkflowName  = "failback"
	SuspendWorkflowName   = "suspend"
	ResumeWorkflowName    = "resume"
)

func init() {
	register(ProtectWorkflowName, ProtectWorkflow)
	register(UnprotectWorkflowName, UnprotectWorkflow)
	register(ReprotectWorkflowName, ReprotectWorkflow)
	register(FailbackWorkflowName, FailbackWorkflow)
	register(SuspendWorkflowName, SuspendWorkflow)
	register(ResumeWorkflowName, ResumeWorkflow)
}

// Step names of the lifecycle runs. A failback's last stage, which reverses
// replication back to the original direction, prefixes its steps with
// RestorePrefix.
const (
	StepEnableReplication  = "enable_replication"
	StepDisableReplication = "disable_replication"
	StepSuspendReplication = "suspend_replication"
	StepResumeReplication  = "resume_replication"
	StepResync             = "resync"
	StepUnfence            = "unfence"
	StepWaitInSync         = "wait_in_sync"
	StepFailoverHome       = "failover_home"
	StepRecordReplicas     = "record_replicas"

	RestorePrefix = "restore:"
)

// LifecycleInput starts a protect, unprotect, reprotect, failback, suspend
// or resume run of a group.
type LifecycleInput struct {
	Group       string `json:"group"`
	RequestedBy string `json:"requested_by,omitempty"`
	// MaxAttempts bounds how often a step's activity retries by itself
	// before the run compensates or pauses (default 5).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// SkipApproval waives the group's approval policy (failback, unprotect).
	SkipApproval bool `json:"skip_approval,omitempty"`
	// QuiescePolicy overrides the group's policy for a failback's failover.
	QuiescePolicy string `json:"quiesce_policy,omitempty"`
}

// FailbackFailoverID is the workflow id of a failback's failover: a child
// of the failback, which holds the group's id.
func FailbackFailoverID(group string) string { return GroupWorkflowID(group) + "/failback-failover" }

// LifecycleSteps lists the steps a lifecycle run of kind takes, in order.
func LifecycleSteps(kind string) []string {
	var steps []string
	switch kind {
	case ferry.KindProtect:
		steps = []string{StepPrecheck, StepEnableReplication, StepWaitInSync}
	case ferry.KindUnprotect:
		steps = []string{StepPrecheck, StepApproval, StepDisableReplication}
	case ferry.KindReprotect:
		steps = []string{StepPrecheck, StepEnableReplication, StepResync, StepUnfence, StepWaitInSync}
	case ferry.KindFailback:
		steps = []string{StepPrecheck, StepApproval, StepEnableReplication, StepResync, StepUnfence, StepWaitInSync,
			StepFailoverHome, RestorePrefix + StepResync, RestorePrefix + StepWaitInSync}
	case ferry.KindSuspend:
		steps = []string{StepPrecheck, StepSuspendReplication}
	case ferry.KindResume:
		steps = []string{StepPrecheck, StepResumeReplication, StepWaitInSync}
	}
	return append(steps, StepRecordReplicas, StepRecord)
}

// lifecycle is one lifecycle run: the runner's machinery and the plan.
type lifecycle struct {
	runner
	in   LifecycleInput
	kind string
	plan activities.LifecyclePlan
	// discarded sums the writes the resyncs threw away.
	discarded int64
	resynced  bool
}

// ProtectWorkflow establishes replication of every volume and share of a
// group at its peer site (its DR site while it runs at home) and waits
// until the replicas are in_sync. A failure creating replicas removes the
// ones this run created (rolled_back); once they exist, a failure pauses.
func ProtectWorkflow(ctx workflow.Context, in LifecycleInput) (ferry.Run, error) {
	return runLifecycle(ctx, ferry.KindProtect, in, (*lifecycle).protect)
}

// UnprotectWorkflow removes the group's replicas at its peer site. Removing
// is the point of no return: a failure pauses the run.
func UnprotectWorkflow(ctx workflow.Context, in LifecycleInput) (ferry.Run, error) {
	return runLifecycle(ctx, ferry.KindUnprotect, in, (*lifecycle).unprotect)
}

// ReprotectWorkflow makes the replicas at the group's peer site
// secondaries of the actives where the group runs now (after a failover:
// the old primary is resynced, never resumed as a writer), lifts the fence
// a past unplanned failover left, and waits until in_sync within the RPO.
// Before the resync a failure is undone; from it on, a failure pauses.
func ReprotectWorkflow(ctx workflow.Context, in LifecycleInput) (ferry.Run, error) {
	return runLifecycle(ctx, ferry.KindReprotect, in, (*lifecycle).reprotect)
}

// FailbackWorkflow brings a group home: reprotect toward its primary site,
// a planned failover back (the failover workflow, as a child), then
// reprotect in the original direction.
func FailbackWorkflow(ctx workflow.Context, in LifecycleInput) (ferry.Run, error) {
	return runLifecycle(ctx, ferry.KindFailback, in, (*lifecycle).failback)
}

// SuspendWorkflow pauses replication of a group's resources for planned
// maintenance; the secondaries fall behind on purpose. A failure resumes
// what was suspended (rolled_back).
func SuspendWorkflow(ctx workflow.Context, in LifecycleInput) (ferry.Run, error) {
	return runLifecycle(ctx, ferry.KindSuspend, in, (*lifecycle).suspend)
}

// ResumeWorkflow resumes replication and waits until in_sync. Resuming is
// never undone: a failure pauses for an operator's retry.
func ResumeWorkflow(ctx workflow.Context, in LifecycleInput) (ferry.Run, error) {
	return runLifecycle(ctx, ferry.KindResume, in, (*lifecycle).resume)
}

func runLifecycle(ctx workflow.Context, kind string, in LifecycleInput, body func(*lifecycle, workflow.Context) error) (ferry.Run, error) {
	w := &lifecycle{in: in, kind: kind}
	run := ferry.Run{Kind: kind, Group: in.Group, RequestedBy: in.RequestedBy}
	if kind == ferry.KindFailback {
		run.Mode = ferry.ModePlanned
	}
	if err := w.begin(ctx, run, in.MaxAttempts, w.commitStep, StepPrecheck); err != nil {
		return ferry.Run{}, err
	}
	err := body(w, ctx)
	if w.resynced {
		d := w.discarded
		w.run.WritesDiscarded = &d
	}
	if err == nil || w.committed {
		// A run that rolls back leaves the replicas as its precheck saw
		// and recorded them.
		w.recordReplicas(ctx)
	}
	return w.end(ctx, err)
}

// --- runbooks ----------------------------------------------------------------

func (w *lifecycle) protect(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	w.commitStep = StepEnableReplication
	if err := w.do(ctx, StepEnableReplication, w.enable("")); err != nil {
		return err
	}
	w.commit("the group's replicas exist at " + w.plan.PeerSite)
	return w.do(ctx, StepWaitInSync, w.waitInSync(""))
}

func (w *lifecycle) unprotect(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	if err := w.approval(ctx); err != nil {
		return err
	}
	w.commitStep = StepDisableReplication
	return w.do(ctx, StepDisableReplication, func(ctx workflow.Context) error {
		// Removing a replica cannot be undone: from here on a failure waits
		// for an operator.
		w.commit("replicas at " + w.plan.PeerSite + " may be removed")
		return w.eachBatch(ctx, func(ctx workflow.Context, b activities.Batch) error {
			w.touch(b.Target, b.Resources)
			return workflow.ExecuteActivity(w.opts(ctx, "short"), a.DisableReplication, activities.BatchInput{
				Key: w.key(StepDisableReplication, b.ID()), Batch: b,
			}).Get(ctx, nil)
		})
	})
}

func (w *lifecycle) reprotect(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	return w.reverse(ctx, "")
}

// reverse is a reprotect's body: replicas where missing, resync (the point
// of no return), the fences lifted, in sync. prefix names a failback's
// stage.
func (w *lifecycle) reverse(ctx workflow.Context, prefix string) error {
	w.commitStep = prefix + StepResync
	stages := []stage{
		{name: prefix + StepEnableReplication, fn: w.enable(prefix)},
		{name: prefix + StepResync, fn: w.resync(prefix)},
		{name: prefix + StepUnfence, fn: w.unfence(prefix)},
		{name: prefix + StepWaitInSync, fn: w.waitInSync(prefix)},
	}
	if prefix == RestorePrefix {
		// After a planned failover home the old actives are already
		// following: no replica to create, no fence to lift.
		stages = []stage{stages[1], stages[3]}
	}
	return w.stages(ctx, stages...)
}

func (w *lifecycle) failback(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	w.run.Site = w.plan.Group.PrimarySite
	if err := w.approval(ctx); err != nil {
		return err
	}
	if err := w.reverse(ctx, ""); err != nil {
		return err
	}
	if err := w.do(ctx, StepFailoverHome, w.failoverHome); err != nil {
		return err
	}
	w.committedNote = "the group runs at its primary site " + w.plan.Group.PrimarySite + " again"
	err := w.do(ctx, RestorePrefix+StepResync, func(ctx workflow.Context) error {
		// The failover moved the group: plan the original direction anew.
		if err := w.replan(ctx, ferry.KindReprotect); err != nil {
			return err
		}
		return w.resync(RestorePrefix)(ctx)
	})
	if err != nil {
		return err
	}
	return w.do(ctx, RestorePrefix+StepWaitInSync, w.waitInSync(RestorePrefix))
}

func (w *lifecycle) suspend(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	return w.do(ctx, StepSuspendReplication, func(ctx workflow.Context) error {
		// Resuming what a failed run suspended puts replication back as it was.
		w.compensate(StepSuspendReplication, func(ctx workflow.Context) error {
			return w.eachBatch(ctx, func(ctx workflow.Context, b activities.Batch) error {
				return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.ResumeReplication, activities.BatchInput{
					Key: w.key("undo_suspend", b.ID()), Batch: b,
				}).Get(ctx, nil)
			})
		})
		err := w.eachBatch(ctx, func(ctx workflow.Context, b activities.Batch) error {
			return workflow.ExecuteActivity(w.opts(ctx, "short"), a.SuspendReplication, activities.BatchInput{
				Key: w.key(StepSuspendReplication, b.ID()), Batch: b,
			}).Get(ctx, nil)
		})
		if err == nil {
			w.step(StepSuspendReplication).Note = fmt.Sprintf("replication to %s suspended: the lag grows until resume", w.plan.PeerSite)
			w.flag("replication-suspended")
		}
		return err
	})
}

func (w *lifecycle) resume(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	w.commitStep = StepResumeReplication
	err := w.do(ctx, StepResumeReplication, func(ctx workflow.Context) error {
		// Resuming is never undone: suspending again would be the opposite
		// of what was asked. A failure waits for an operator's retry.
		w.commit("replication to " + w.plan.PeerSite + " may be resumed")
		if len(w.plan.Suspended) == 0 {
			w.step(StepResumeReplication).Note = "replication was not suspended"
		}
		return w.eachBatch(ctx, func(ctx workflow.Context, b activities.Batch) error {
			return workflow.ExecuteActivity(w.opts(ctx, "short"), a.ResumeReplication, activities.BatchInput{
				Key: w.key(StepResumeReplication, b.ID()), Batch: b,
			}).Get(ctx, nil)
		})
	})
	if err != nil {
		return err
	}
	return w.do(ctx, StepWaitInSync, w.waitInSync(""))
}

// --- steps -------------------------------------------------------------------

func (w *lifecycle) precheck(ctx workflow.Context) error {
	if err := w.replan(ctx, w.kind); err != nil {
		return err
	}
	w.prechecked = true
	w.group = w.plan.Group
	if w.run.Site == "" {
		w.run.Site = w.plan.PeerSite
	}
	st := w.step(StepPrecheck)
	st.Note = fmt.Sprintf("group runs at %s; peer site %s; %d batch(es)", w.plan.ActiveSite, w.plan.PeerSite, len(w.plan.Batches))
	for _, warn := range w.plan.Warnings {
		st.Note = joinNote(st.Note, warn)
	}
	w.expect(LifecycleSteps(w.kind)...)
	return nil
}

func (w *lifecycle) replan(ctx workflow.Context, kind string) error {
	return workflow.ExecuteActivity(w.opts(ctx, "short"), a.PlanLifecycle, activities.LifecycleInput{
		Group: w.in.Group, Kind: kind,
	}).Get(ctx, &w.plan)
}

// commit marks the point of no return: from here on failures pause.
func (w *lifecycle) commit(note string) {
	w.committed = true
	w.committedNote = note
	w.compensations = nil
}

func (w *lifecycle) approval(ctx workflow.Context) error {
	st := w.step(StepApproval)
	pol := w.plan.Group.Approval
	if !pol.Required || w.in.SkipApproval {
		st.State = ferry.StepSkipped
		st.Note = "not required by the group's approval policy"
		if w.in.SkipApproval && pol.Required {
			st.Note = "waived by " + w.in.RequestedBy + " at start"
		}
		return nil
	}
	st.State, st.Started = ferry.StepRunning, timePtr(now(ctx))
	err := w.awaitApproval(ctx)
	st = w.step(StepApproval)
	st.Ended = timePtr(now(ctx))
	if err != nil {
		st.State, st.Error = ferry.StepFailed, message(err)
		return err
	}
	st.State = ferry.StepCompleted
	st.Note = "approved by " + w.run.Approvals[len(w.run.Approvals)-1].By
	return nil
}

// enable creates the replicas missing at the peer. Only the ones this run
// creates are removed again if the run fails before its point of no return.
func (w *lifecycle) enable(prefix string) func(workflow.Context) error {
	name := prefix + StepEnableReplication
	return func(ctx workflow.Context) error {
		missing := map[string]bool{}
		for _, r := range w.plan.Missing {
			missing[r] = true
		}
		var todo []activities.Batch
		for _, b := range w.plan.Batches {
			nb := b
			nb.Resources = nil
			for _, r := range b.Resources {
				if missing[r] {
					nb.Resources = append(nb.Resources, r)
				}
			}
			if len(nb.Resources) > 0 {
				todo = append(todo, nb)
			}
		}
		if len(todo) == 0 {
			w.step(name).Note = "every resource has a replica at " + w.plan.PeerSite
			return nil
		}
		w.compensate(name, func(ctx workflow.Context) error {
			return w.each(ctx, len(todo), func(ctx workflow.Context, i int) error {
				return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.DisableReplication, activities.BatchInput{
					Key: w.key("undo_"+name, todo[i].ID()), Batch: todo[i],
				}).Get(ctx, nil)
			})
		})
		err := w.each(ctx, len(todo), func(ctx workflow.Context, i int) error {
			w.touch(todo[i].Target, todo[i].Resources)
			return workflow.ExecuteActivity(w.opts(ctx, "short"), a.EnableReplication, activities.BatchInput{
				Key: w.key(name, todo[i].ID()), Batch: todo[i],
			}).Get(ctx, nil)
		})
		if err == nil {
			w.step(name).Note = fmt.Sprintf("created %d replica(s) at %s", len(w.plan.Missing), w.plan.PeerSite)
		}
		return err
	}
}

// resync makes the peer replicas secondaries of the actives. It is the point
// of no return: whatever a returning old primary held that nobody
// replicated is gone, and the run says how many writes that was.
func (w *lifecycle) resync(prefix string) func(workflow.Context) error {
	name := prefix + StepResync
	return func(ctx workflow.Context) error {
		// A backend the failover froze with its fence takes no resync until
		// thawed; thawing leaves the fence, so it still takes no write.
		var frozen []activities.FencedBackend
		for _, f := range w.plan.Fenced {
			if f.Frozen {
				frozen = append(frozen, f)
			}
		}
		err := w.each(ctx, len(frozen), func(ctx workflow.Context, i int) error {
			return workflow.ExecuteActivity(w.opts(ctx, "short"), a.ThawFenced, activities.FenceInput{
				Key: w.key(name+"/thaw", frozen[i].Backend), Backend: frozen[i].Backend, Epoch: frozen[i].Epoch,
			}).Get(ctx, nil)
		})
		if err != nil {
			return err
		}
		results := make([]drivers.ResyncResult, len(w.plan.Batches))
		done := make([]bool, len(w.plan.Batches))
		err = w.each(ctx, len(w.plan.Batches), func(ctx workflow.Context, i int) error {
			b := w.plan.Batches[i]
			w.touch(b.Target, b.Resources)
			err := workflow.ExecuteActivity(w.opts(ctx, "long"), a.Resync, activities.BatchInput{
				Key: w.key(name, b.ID()), Batch: b,
			}).Get(ctx, &results[i])
			done[i] = err == nil
			return err
		})
		for i, d := range done {
			if !d {
				continue
			}
			if !w.committed {
				w.commit(fmt.Sprintf("replication reversed: %s follows %s", w.plan.PeerSite, w.plan.ActiveSite))
			}
			w.resynced = true
			for _, n := range results[i].Discarded {
				// -1 is the storage's "cannot tell" (PostgreSQL knows WAL
				// positions, not writes): unknown stays unknown.
				if n < 0 || w.discarded < 0 {
					w.discarded = -1
				} else {
					w.discarded += n
				}
			}
			results[i].Discarded = nil // counted once, even if the step is retried
		}
		if err != nil {
			return err
		}
		discarded := fmt.Sprint(w.discarded)
		if w.discarded < 0 {
			discarded = "unknown (the storage cannot count them)"
		}
		w.step(name).Note = fmt.Sprintf("%s now follows %s; writes discarded: %s in total", w.plan.PeerSite, w.plan.ActiveSite, discarded)
		if w.discarded > 0 {
			w.flag("writes-discarded")
		}
		return nil
	}
}

// unfence lifts the fences an unplanned failover left on the peer backends,
// now that their replicas are secondaries. A backend another group's
// diverged replica still sits on stays fenced, and the step says so.
func (w *lifecycle) unfence(prefix string) func(workflow.Context) error {
	name := prefix + StepUnfence
	return func(ctx workflow.Context) error {
		fenced := w.plan.Fenced
		if len(fenced) == 0 {
			w.step(name).Note = "no peer backend is fenced"
			return nil
		}
		results := make([]activities.ReleaseFenceResult, len(fenced))
		err := w.each(ctx, len(fenced), func(ctx workflow.Context, i int) error {
			return workflow.ExecuteActivity(w.opts(ctx, "short"), a.ReleaseFence, activities.ReleaseFenceInput{
				Key: w.key(name, fenced[i].Backend), Backend: fenced[i].Backend, Epoch: fenced[i].Epoch,
			}).Get(ctx, &results[i])
		})
		if err != nil {
			return err
		}
		var notes []string
		for i, r := range results {
			notes = append(notes, r.Note)
			if !r.Released {
				w.flag("still-fenced:" + fenced[i].Backend)
			}
		}
		w.step(name).Note = strings.Join(notes, "; ")
		return nil
	}
}

// waitInSync waits until every peer replica is in_sync within the group's
// RPO, and records the lag they had then as the run's RPO.
func (w *lifecycle) waitInSync(prefix string) func(workflow.Context) error {
	name := prefix + StepWaitInSync
	return func(ctx workflow.Context) error {
		results := make([]activities.InSync, len(w.plan.Batches))
		err := w.each(ctx, len(w.plan.Batches), func(ctx workflow.Context, i int) error {
			return workflow.ExecuteActivity(w.opts(ctx, "wait"), a.WaitInSync, activities.InSyncInput{
				Batch: w.plan.Batches[i], RPOSeconds: w.plan.Group.RPOSeconds,
			}).Get(ctx, &results[i])
		})
		if err != nil {
			return err
		}
		var lag float64
		for _, r := range results {
			lag = max(lag, r.MaxLagSeconds)
		}
		w.run.RPOSeconds = &lag
		w.step(name).Note = fmt.Sprintf("replicas at %s in_sync: lag %.1fs within the RPO of %ds", w.plan.PeerSite, lag, w.plan.Group.RPOSeconds)
		return nil
	}
}

// failoverHome runs the planned failover back to the primary site as a
// child workflow, so the failover's runbook (quiesce, snapshot, final sync,
// demote, promote, boot, DNS, verify, hooks) lives in one place. The
// failback's approval covers it.
func (w *lifecycle) failoverHome(ctx workflow.Context) error {
	g := w.plan.Group
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            FailbackFailoverID(g.Name),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// An abort of the failback cancels the failover, which then rolls
		// itself back if it has not promoted yet.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchKind.ValueSet(ferry.KindFailover), SearchGroup.ValueSet(g.Name), SearchSite.ValueSet(g.PrimarySite)),
	})
	in := FailoverInput{
		Group: g.Name, Mode: ferry.ModePlanned, TargetSite: g.PrimarySite, RequestedBy: w.in.RequestedBy,
		QuiescePolicy: w.in.QuiescePolicy, SkipApproval: true, MaxAttempts: w.in.MaxAttempts,
	}
	fut := workflow.ExecuteChildWorkflow(cctx, FailoverWorkflowName, in)
	var exec workflow.Execution
	if err := fut.GetChildWorkflowExecution().Get(ctx, &exec); err != nil {
		return err
	}
	st := w.step(StepFailoverHome)
	st.Note = "failover run " + exec.RunID
	rec := ferry.Run{ID: exec.RunID, WorkflowID: exec.ID, Kind: ferry.KindFailover, Group: g.Name, Site: g.PrimarySite,
		Mode: ferry.ModePlanned, State: ferry.RunRunning, RequestedBy: w.in.RequestedBy, Created: now(ctx)}
	if err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.TrackChildRun, rec).Get(ctx, nil); err != nil {
		w.step(StepFailoverHome).Note = joinNote(w.step(StepFailoverHome).Note, "its record was not stored at start: "+message(err))
	}
	var child ferry.Run
	if err := fut.Get(ctx, &child); err != nil {
		return err
	}
	w.run.RPOSeconds, w.run.RTOSeconds, w.run.WritesLost = child.RPOSeconds, child.RTOSeconds, child.WritesLost
	for _, f := range child.Flags {
		w.flag("failover:" + f)
	}
	if child.State != ferry.RunCompleted {
		return temporal.NewApplicationError(fmt.Sprintf("failover %s ended %s: %s", exec.RunID, child.State, child.Message), "failover-not-completed")
	}
	w.step(StepFailoverHome).Note = fmt.Sprintf("failover run %s completed: the group runs at %s", exec.RunID, g.PrimarySite)
	return nil
}

// recordReplicas stores the replicas as the run leaves them. It runs on
// every outcome and never fails the run: the replication monitor refreshes
// them too.
func (w *lifecycle) recordReplicas(ctx workflow.Context) {
	st := w.step(StepRecordReplicas)
	if !w.prechecked {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	st.State, st.Started, st.Attempts = ferry.StepRunning, timePtr(now(dctx)), 1
	err := workflow.ExecuteActivity(w.opts(dctx, "short"), a.RecordReplicas, w.in.Group).Get(dctx, nil)
	st = w.step(StepRecordReplicas)
	st.Ended = timePtr(now(dctx))
	if err != nil {
		st.State, st.Error = ferry.StepFailed, message(err)
		w.flag("replicas-not-recorded")
		return
	}
	st.State = ferry.StepCompleted
}

func (w *lifecycle) touch(backend string, resources []string) {
	for _, r := range resources {
		t := "replica:" + r + "@" + backend
		found := false
		for _, have := range w.run.Touched {
			found = found || have == t
		}
		if !found {
			w.run.Touched = append(w.run.Touched, t)
		}
	}
}

func (w *lifecycle) eachBatch(ctx workflow.Context, fn func(ctx workflow.Context, b activities.Batch) error) error {
	return w.each(ctx, len(w.plan.Batches), func(ctx workflow.Context, i int) error {
		return fn(ctx, w.plan.Batches[i])
	})
}
