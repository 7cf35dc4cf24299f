package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/drivers"
)

func init() {
	register(BackendFailoverWorkflowName, BackendFailoverWorkflow)
	register(SharePromoteWorkflowName, SharePromoteWorkflow)
}

// Names of the backend-scoped runs.
const (
	BackendFailoverWorkflowName = "backend-failover"
	SharePromoteWorkflowName    = "share-promote"
)

// Step names of a backend failover and a share promote (with StepPrecheck,
// StepDemote, StepPromote, StepFailoverCompleted and StepRecord).
const (
	StepFreeze        = "freeze"
	StepFailover      = "failover"
	StepSetStatus     = "set_status"
	StepThaw          = "thaw"
	StepReplicaStates = "replica_states"
)

// BackendWorkflowID is the workflow id of a backend's failover runs: one at
// a time per backend.
func BackendWorkflowID(backend string) string { return "ferry-backend-" + backend }

// BackendFailoverInput starts a backend failover.
type BackendFailoverInput struct {
	Backend string `json:"backend"`
	// TargetID is one of the backend's replication target ids; "" is its
	// first one; "default" fails back.
	TargetID    string `json:"target_id,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	MaxAttempts int    `json:"max_attempts,omitempty"`
}

// BackendFailoverSteps lists the steps of a backend failover, in order.
func BackendFailoverSteps() []string {
	return []string{StepPrecheck, StepFreeze, StepFailover, StepFailoverCompleted, StepSetStatus, StepThaw, StepRecord}
}

type backendFailover struct {
	runner
	in     BackendFailoverInput
	plan   activities.BackendPlan
	result drivers.HostFailoverResult
}

// BackendFailoverWorkflow is Cinder's failover_host for one backend, done
// right for active-active clusters: freeze, failover at the storage (the
// point of no return), failover_completed to every member of the serving
// cluster with each member's active_backend_id checked, replication_status
// failed-over, thaw. Before the storage failover a failure thaws and the
// run ends rolled_back with the status as it was; a failure of the storage
// failover leaves replication_status failover-error and the run failed,
// saying why; after it a failing step pauses for an operator.
func BackendFailoverWorkflow(ctx workflow.Context, in BackendFailoverInput) (ferry.Run, error) {
	w := &backendFailover{in: in}
	run := ferry.Run{Kind: ferry.KindBackendFailover, Backend: in.Backend, RequestedBy: in.RequestedBy}
	if err := w.begin(ctx, run, in.MaxAttempts, StepFailover, BackendFailoverSteps()...); err != nil {
		return ferry.Run{}, err
	}
	return w.end(ctx, w.execute(ctx))
}

func (w *backendFailover) execute(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	if err := w.do(ctx, StepFreeze, w.freeze); err != nil {
		return err
	}
	if err := w.failover(ctx); err != nil {
		return err
	}
	err := w.stages(ctx,
		stage{name: StepFailoverCompleted, fn: w.failoverCompleted},
		stage{name: StepSetStatus, fn: w.setStatus},
		stage{name: StepThaw, fn: w.thaw},
	)
	if err != nil {
		return err
	}
	if st := w.step(StepSetStatus); st.State == ferry.StepSkipped {
		w.run.Message = "set_status was skipped: replication_status of " + w.plan.Backend + " is " + ferry.ReplicationFailoverErr
	}
	rto := now(ctx).Sub(w.run.Created).Seconds()
	w.run.RTOSeconds = &rto
	return nil
}

func (w *backendFailover) precheck(ctx workflow.Context) error {
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.BackendPrecheck, activities.BackendPlanInput{
		Backend: w.in.Backend, TargetID: w.in.TargetID,
	}).Get(ctx, &w.plan)
	if err != nil {
		return err
	}
	w.prechecked = true
	w.run.Site = w.plan.TargetSite
	w.run.Touched = append(w.run.Touched, "backend:"+w.plan.Backend)
	w.committedNote = fmt.Sprintf("backend %s is failed over to %q", w.plan.Backend, w.plan.TargetID)
	note := fmt.Sprintf("%s -> %s (target %q, backend %s at %s); serving cluster %s: %s",
		w.plan.Backend, w.plan.TargetBackend, w.plan.TargetID, w.plan.TargetBackend, w.plan.TargetSite,
		w.plan.Serving, strings.Join(w.plan.Members, ", "))
	if w.plan.Failback {
		w.committedNote = fmt.Sprintf("backend %s is failed back", w.plan.Backend)
		note = fmt.Sprintf("fail back %s to itself (%q); serving cluster %s: %s", w.plan.Backend, ferry.ActiveBackendDefault,
			w.plan.Serving, strings.Join(w.plan.Members, ", "))
	}
	for _, warn := range w.plan.Warnings {
		note = joinNote(note, warn)
	}
	w.step(StepPrecheck).Note = note
	return nil
}

// freeze stops management changes on the backend (deletes included) and
// marks it failing-over. Its undo restores what the precheck found.
func (w *backendFailover) freeze(ctx workflow.Context) error {
	p := w.plan
	w.compensate(StepFreeze, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.ThawBackend, activities.ThawBackendInput{
			Key: w.key("unfreeze", p.Backend), Backend: p.Backend, TolerateUnreachable: p.Forced,
			Restore: &activities.BackendRestore{Storage: p.Storage, Recorded: p.Recorded},
		}).Get(ctx, nil)
	})
	var res activities.FreezeResult
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.FreezeBackend, activities.FreezeBackendInput{
		Key: w.key(StepFreeze, p.Backend), Backend: p.Backend, StorageActiveID: p.Storage.ActiveID,
		RecordedActiveID: p.Recorded.ActiveID, TolerateUnreachable: p.Forced,
	}).Get(ctx, &res)
	if err != nil {
		return err
	}
	if !res.Frozen {
		w.step(StepFreeze).Note = p.Backend + " is unreachable: frozen in the inventory only"
	}
	return nil
}

// failover is the point of no return: whatever the storage answers, it may
// have acted, so nothing is rolled back from here. A failure leaves the
// backend failover-error and frozen, and ends the run failed.
func (w *backendFailover) failover(ctx workflow.Context) error {
	p := w.plan
	err := w.doOnce(ctx, StepFailover, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(w.opts(ctx, "long"), a.FailoverHost, activities.HostFailoverInput{
			Key: w.key(StepFailover, p.Backend), Backend: p.Backend, TargetID: p.TargetID,
		}).Get(ctx, &w.result)
	})
	w.committed = true
	w.compensations = nil
	if errors.Is(err, errAborted) {
		return err
	}
	if err != nil {
		reason := message(err)
		w.flag(ferry.ReplicationFailoverErr)
		var res activities.BackendStatusResult
		serr := workflow.ExecuteActivity(w.opts(ctx, "short"), a.SetBackendStatus, activities.BackendStatusInput{
			Key: w.key("failover_error", p.Backend), Backend: p.Backend, Status: ferry.ReplicationFailoverErr,
			ActiveBackendID: p.Storage.ActiveID, Frozen: true, TolerateUnreachable: p.Forced,
		}).Get(ctx, &res)
		status := "replication_status of " + p.Backend + " is " + ferry.ReplicationFailoverErr
		if serr != nil {
			status = "replication_status " + ferry.ReplicationFailoverErr + " could not be recorded: " + message(serr)
		}
		st := w.step(StepFailover)
		st.Note = joinNote(st.Note, status)
		return fmt.Errorf("failover of %s at the storage failed: %s; %s; the backend stays frozen: find the cause, then start backend-failover again",
			p.Backend, reason, status)
	}
	w.recordResult()
	return nil
}

// recordResult puts what the storage did in the run: the data-loss window,
// the writes lost, and every resource touched.
func (w *backendFailover) recordResult() {
	var dataLoss time.Duration
	var lost int64
	var names []string
	for _, pt := range w.result.Promoted {
		dataLoss = max(dataLoss, pt.DataLoss)
		if pt.LostWrites < 0 || lost < 0 {
			lost = -1
		} else {
			lost += pt.LostWrites
		}
		names = append(names, pt.Resource)
	}
	sort.Strings(names)
	errored := append([]string(nil), w.result.Errored...)
	sort.Strings(errored)
	rpo := dataLoss.Seconds()
	w.run.RPOSeconds, w.run.WritesLost = &rpo, &lost
	for _, n := range names {
		w.run.Touched = append(w.run.Touched, "promoted:"+n+"@"+w.plan.TargetBackend)
	}
	for _, n := range errored {
		w.run.Touched = append(w.run.Touched, "error:"+n)
	}
	note := fmt.Sprintf("%d resources active on %s; data loss window %s, writes lost %d", len(names), w.plan.TargetBackend, dataLoss, lost)
	if len(errored) > 0 {
		w.flag("resources-in-error")
		note += fmt.Sprintf("; not replicated to %q, now in error: %s", w.plan.TargetID, strings.Join(errored, ", "))
	}
	w.step(StepFailover).Note = note
}

// failoverCompleted tells every member of the serving cluster and checks
// each one's active_backend_id (invariant 2).
func (w *backendFailover) failoverCompleted(ctx workflow.Context) error {
	p := w.plan
	if len(p.Members) == 0 {
		w.step(StepFailoverCompleted).Note = "no cluster members to notify"
		return nil
	}
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.FailoverCompleted, activities.CompletedInput{
		Key: w.key(StepFailoverCompleted, p.Serving), Backend: p.Serving, Members: p.Members, ActiveBackendID: p.ActiveBackendID,
	}).Get(ctx, nil)
	if err == nil {
		w.step(StepFailoverCompleted).Note = fmt.Sprintf("%s: %d members hold active_backend_id %q", p.Serving, len(p.Members), p.ActiveBackendID)
	}
	return err
}

// setStatus records replication_status failed-over (enabled after a
// failback) and the active_backend_id, at the storage and in the inventory.
func (w *backendFailover) setStatus(ctx workflow.Context) error {
	p := w.plan
	status, active := ferry.ReplicationFailedOver, p.TargetID
	if p.Failback {
		status, active = ferry.ReplicationEnabled, ""
	}
	var res activities.BackendStatusResult
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.SetBackendStatus, activities.BackendStatusInput{
		Key: w.key(StepSetStatus, p.Backend), Backend: p.Backend, Status: status, ActiveBackendID: active,
		Frozen: true, TolerateUnreachable: p.Forced,
	}).Get(ctx, &res)
	if err != nil {
		w.flag(ferry.ReplicationFailoverErr)
		return err
	}
	note := fmt.Sprintf("replication_status %s, active_backend_id %q", status, active)
	if !res.AtStorage {
		note += "; " + p.Backend + " is unreachable: recorded in the inventory only"
	}
	w.step(StepSetStatus).Note = note
	return nil
}

func (w *backendFailover) thaw(ctx workflow.Context) error {
	p := w.plan
	return workflow.ExecuteActivity(w.opts(ctx, "short"), a.ThawBackend, activities.ThawBackendInput{
		Key: w.key(StepThaw, p.Backend), Backend: p.Backend, TolerateUnreachable: p.Forced,
	}).Get(ctx, nil)
}

// SharePromoteInput starts the promote of one share replica.
type SharePromoteInput struct {
	// Group holds the share; the run takes the group's workflow id.
	Group string `json:"group"`
	Share string `json:"share"`
	// Target is the site or backend of the replica to promote; "" is the
	// share's only other replica.
	Target      string `json:"target,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	MaxAttempts int    `json:"max_attempts,omitempty"`
}

// SharePromoteSteps lists the steps of a share promote of g, in order.
func SharePromoteSteps(g ferry.Group) []string {
	steps := []string{StepPrecheck, StepDemote, StepPromote}
	steps = append(steps, hookSteps(g, ferry.HookAfterPromote, "")...)
	return append(steps, StepReplicaStates, StepRecord)
}

type sharePromote struct {
	runner
	in   SharePromoteInput
	plan activities.SharePlan
}

// SharePromoteWorkflow is Manila's promote of one share replica, to test a
// single share without an outage: the active replica is demoted, the chosen
// one promoted with every write handed over, and the old active follows it
// as a secondary, in_sync once it has caught up. Before promote a failure
// undoes the demote (rolled_back); after it a failing step pauses.
func SharePromoteWorkflow(ctx workflow.Context, in SharePromoteInput) (ferry.Run, error) {
	w := &sharePromote{in: in}
	run := ferry.Run{Kind: ferry.KindSharePromote, Group: in.Group, RequestedBy: in.RequestedBy, RunDetails: ferry.RunDetails{Share: in.Share}}
	if err := w.begin(ctx, run, in.MaxAttempts, StepPromote, StepPrecheck); err != nil {
		return ferry.Run{}, err
	}
	return w.end(ctx, w.execute(ctx))
}

func (w *sharePromote) execute(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	if err := w.stages(ctx, stage{name: StepDemote, fn: w.demote}, stage{name: StepPromote, fn: w.promote}); err != nil {
		return err
	}
	return w.stages(ctx, hookAt(ferry.HookAfterPromote, map[string]string{"share": w.plan.Share}),
		stage{name: StepReplicaStates, fn: w.replicaStates})
}

func (w *sharePromote) precheck(ctx workflow.Context) error {
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.SharePrecheck, activities.SharePlanInput{
		Group: w.in.Group, Share: w.in.Share, Target: w.in.Target,
	}).Get(ctx, &w.plan)
	if err != nil {
		return err
	}
	w.prechecked = true
	w.group = w.plan.Group
	w.run.Group, w.run.Site, w.run.Backend = w.plan.Group.Name, w.plan.TargetSite, w.plan.TargetBackend
	w.run.Touched = []string{w.plan.Share + "@" + w.plan.ActiveBackend, w.plan.Share + "@" + w.plan.TargetBackend}
	w.committedNote = fmt.Sprintf("the replica of %s at %s is active", w.plan.Share, w.plan.TargetSite)
	note := fmt.Sprintf("promote %s: %s (%s) -> %s (%s)", w.plan.Share, w.plan.ActiveSite, w.plan.ActiveBackend, w.plan.TargetSite, w.plan.TargetBackend)
	for _, warn := range w.plan.Warnings {
		note = joinNote(note, warn)
	}
	w.step(StepPrecheck).Note = note
	w.expect(SharePromoteSteps(w.plan.Group)...)
	return nil
}

func (w *sharePromote) source() activities.Batch {
	return activities.Batch{Source: w.plan.ActiveBackend, Target: w.plan.TargetBackend, Resources: []string{w.plan.Share}}
}

func (w *sharePromote) demote(ctx workflow.Context) error {
	b := w.source()
	w.compensate(StepDemote, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.Undemote, activities.BatchInput{
			Key: w.key("undo_demote", b.ID()), Batch: b,
		}).Get(ctx, nil)
	})
	return workflow.ExecuteActivity(w.opts(ctx, "short"), a.Demote, activities.BatchInput{
		Key: w.key(StepDemote, b.ID()), Batch: b,
	}).Get(ctx, nil)
}

// promote makes the chosen replica active; the demoted one hands over its
// writes first, so nothing is lost while the link is up.
func (w *sharePromote) promote(ctx workflow.Context) error {
	b := w.source()
	var res drivers.PromoteResult
	err := workflow.ExecuteActivity(w.opts(ctx, "long"), a.Promote, activities.PromoteInput{
		Key: w.key(StepPromote, b.ID()), Batch: b,
	}).Get(ctx, &res)
	if err != nil {
		return err
	}
	w.committed = true
	w.compensations = nil
	var dataLoss time.Duration
	var lost int64
	for _, p := range res.Points {
		dataLoss = max(dataLoss, p.DataLoss)
		lost += p.LostWrites
	}
	rpo, rto := dataLoss.Seconds(), now(ctx).Sub(w.run.Created).Seconds()
	w.run.RPOSeconds, w.run.WritesLost, w.run.RTOSeconds = &rpo, &lost, &rto
	w.step(StepPromote).Note = fmt.Sprintf("%s active at %s; data loss window %s, writes lost %d", w.plan.Share, w.plan.TargetSite, dataLoss, lost)
	return nil
}

// replicaStates waits until every other replica follows the new active
// in_sync, and records the replicas' states, as Manila's periodic
// update_replica_state would.
func (w *sharePromote) replicaStates(ctx workflow.Context) error {
	var reps []ferry.Replica
	err := workflow.ExecuteActivity(w.opts(ctx, "wait"), a.ShareReplicaStates, activities.ShareStatesInput{
		Group: w.plan.Group.Name, Share: w.plan.Share,
	}).Get(ctx, &reps)
	if err != nil {
		return err
	}
	var parts []string
	for _, r := range reps {
		parts = append(parts, fmt.Sprintf("%s (%s): %s", r.Site, r.Backend, r.State))
	}
	w.step(StepReplicaStates).Note = strings.Join(parts, "; ")
	return nil
}
