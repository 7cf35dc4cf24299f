package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/drivers"
)

func init() { register(FailoverWorkflowName, FailoverWorkflow) }

// Workflows call activities through this nil pointer: method values give
// the activity names and types without strings.
var a *activities.Activities

// Step names of a failover, as the progress query and the run record show
// them. Boot steps are "boot:<tier>".
const (
	StepPrecheck          = "precheck"
	StepApproval          = "approval"
	StepQuiesce           = "quiesce"
	StepSnapshot          = "snapshot"
	StepFinalSync         = "final_sync"
	StepStopPrimary       = "stop_primary"
	StepDemote            = "demote"
	StepFence             = "fence"
	StepPromote           = "promote"
	StepFailoverCompleted = "failover_completed"
	StepNetwork           = "network"
	StepDNS               = "dns"
	StepVerify            = "verify"
	StepRecord            = "record"
)

// BootStep names the boot step of a tier.
func BootStep(tier string) string { return "boot:" + tier }

// FailoverSteps lists the steps a failover of g takes in mode, in order.
func FailoverSteps(g ferry.Group, mode string) []string {
	steps := []string{StepPrecheck, StepApproval}
	if mode == ferry.ModeUnplanned {
		steps = append(steps, StepFence, StepPromote)
	} else {
		steps = append(steps, hookSteps(g, ferry.HookBeforeQuiesce, "")...)
		steps = append(steps, StepQuiesce, StepSnapshot)
		steps = append(steps, hookSteps(g, ferry.HookAfterSnapshot, "")...)
		steps = append(steps, StepFinalSync, StepStopPrimary, StepDemote, StepPromote)
	}
	steps = append(steps, hookSteps(g, ferry.HookAfterPromote, "")...)
	steps = append(steps, StepFailoverCompleted, StepNetwork)
	for _, t := range g.Tiers {
		steps = append(steps, BootStep(t.Name))
		steps = append(steps, hookSteps(g, ferry.HookAfterTier, t.Name)...)
	}
	return append(steps, StepDNS, StepVerify, StepRecord)
}

// failover is one failover run: the runner's machinery (steering, steps,
// compensations, the record) and what a failover learns as it goes.
type failover struct {
	runner
	in    FailoverInput
	plan  activities.Plan
	snaps []drivers.Snapshot
	// promoted and promotedOK hold each batch's promote across retries.
	promoted   []drivers.PromoteResult
	promotedOK []bool
	// lost data, summed over promote batches
	dataLoss   time.Duration
	writesLost int64
}

// FailoverWorkflow fails a protection group over to its DR site (or another
// target), planned or unplanned. Before promote every failure is undone and
// the run ends rolled_back with production as it was; after promote the run
// only goes forward, pausing on a failure for an operator's retry, skip or
// abort.
func FailoverWorkflow(ctx workflow.Context, in FailoverInput) (ferry.Run, error) {
	if in.Mode == "" {
		in.Mode = ferry.ModePlanned
	}
	w := &failover{in: in}
	run := ferry.Run{Kind: ferry.KindFailover, Group: in.Group, Site: in.TargetSite, Mode: in.Mode, RequestedBy: in.RequestedBy}
	if err := w.begin(ctx, run, in.MaxAttempts, StepPromote, StepPrecheck); err != nil {
		return ferry.Run{}, err
	}
	return w.end(ctx, w.execute(ctx))
}

// execute is the runbook.
func (w *failover) execute(ctx workflow.Context) error {
	if err := w.do(ctx, StepPrecheck, w.precheck); err != nil {
		return err
	}
	if err := w.approval(ctx); err != nil {
		return err
	}
	var toPromote []stage
	if w.in.Mode == ferry.ModeUnplanned {
		toPromote = []stage{{name: StepFence, fn: w.fence}}
	} else {
		toPromote = []stage{
			hookAt(ferry.HookBeforeQuiesce, nil),
			{name: StepQuiesce, fn: w.quiesce},
			{name: StepSnapshot, fn: w.snapshot},
			hookAt(ferry.HookAfterSnapshot, nil),
			{name: StepFinalSync, fn: w.finalSync},
			{name: StepStopPrimary, fn: w.stopPrimary},
			{name: StepDemote, fn: w.demote},
		}
	}
	toPromote = append(toPromote, stage{name: StepPromote, fn: w.promote})
	if err := w.stages(ctx, toPromote...); err != nil {
		return err
	}
	after := []stage{
		hookAt(ferry.HookAfterPromote, nil),
		{name: StepFailoverCompleted, fn: w.failoverCompleted},
		{name: StepNetwork, fn: w.network},
	}
	for _, t := range w.plan.Group.Tiers {
		after = append(after,
			stage{name: BootStep(t.Name), fn: func(ctx workflow.Context) error { return w.bootTier(ctx, t) }},
			hookAt(ferry.HookAfterTier, map[string]string{"tier": t.Name}))
	}
	after = append(after, stage{name: StepDNS, fn: w.dns}, stage{name: StepVerify, fn: w.verify})
	return w.stages(ctx, after...)
}

func (w *failover) precheck(ctx workflow.Context) error {
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.Precheck, activities.PlanInput{
		Group: w.in.Group, Mode: w.in.Mode, TargetSite: w.in.TargetSite,
	}).Get(ctx, &w.plan)
	if err != nil {
		return err
	}
	w.prechecked = true
	w.group = w.plan.Group
	w.activeSite = w.plan.TargetSite
	w.committedNote = "the group is active at " + w.plan.TargetSite
	w.run.Site = w.plan.TargetSite
	for _, warn := range w.plan.Warnings {
		w.step(StepPrecheck).Note = joinNote(w.step(StepPrecheck).Note, warn)
	}
	w.expect(FailoverSteps(w.plan.Group, w.in.Mode)...)
	return nil
}

func (w *failover) approval(ctx workflow.Context) error {
	st := w.step(StepApproval)
	pol := w.plan.Group.Approval
	needed := pol.Required && (w.in.Mode == ferry.ModePlanned || pol.Unplanned) && !w.in.SkipApproval
	if !needed {
		st.State = ferry.StepSkipped
		st.Note = "not required by the group's approval policy"
		if w.in.SkipApproval && pol.Required {
			st.Note = "waived by " + w.in.RequestedBy + " at start"
		}
		return nil
	}
	st.State, st.Started = ferry.StepRunning, timePtr(now(ctx))
	err := w.awaitApproval(ctx)
	st.Ended = timePtr(now(ctx))
	if err != nil {
		st.State, st.Error = ferry.StepFailed, message(err)
		return err
	}
	st.State = ferry.StepCompleted
	st.Note = "approved by " + w.run.Approvals[len(w.run.Approvals)-1].By
	return nil
}

func (w *failover) servers() []string {
	var names []string
	for _, s := range w.plan.Group.Servers() {
		names = append(names, s.Name)
	}
	return names
}

// quiesce freezes the guests for an application-consistent snapshot. When
// they cannot be frozen the group's policy decides: abort rolls the run
// back, continue goes on crash-consistent and flags it.
func (w *failover) quiesce(ctx workflow.Context) error {
	g := w.plan.Group
	if g.Consistency != ferry.ConsistencyApplication {
		w.step(StepQuiesce).Note = "crash-consistent group: guests are not quiesced"
		return nil
	}
	in := activities.ServersInput{Key: w.key(StepQuiesce, w.plan.SourceSite), Site: w.plan.SourceSite, Servers: w.servers()}
	// Unquiesce even if quiesce failed half way: thawing a guest that was
	// never frozen is harmless.
	w.compensate(StepQuiesce, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.Unquiesce, activities.ServersInput{
			Key: w.key("unquiesce", w.plan.SourceSite), Site: in.Site, Servers: in.Servers,
		}).Get(ctx, nil)
	})
	err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.Quiesce, in).Get(ctx, nil)
	if err == nil {
		return nil
	}
	policy := g.QuiescePolicy
	if w.in.QuiescePolicy != "" {
		policy = w.in.QuiescePolicy
	}
	if policy == ferry.QuiesceContinue && !isCanceled(err) {
		w.flag("crash-consistent")
		w.step(StepQuiesce).Note = "quiesce failed (" + message(err) + "); continuing crash-consistent as the policy allows"
		return nil
	}
	return err
}

// snapshot takes the consistency-group snapshot of every batch.
func (w *failover) snapshot(ctx workflow.Context) error {
	w.snaps = make([]drivers.Snapshot, len(w.plan.Batches))
	return w.eachBatch(ctx, func(ctx workflow.Context, i int, b activities.Batch) error {
		return workflow.ExecuteActivity(w.opts(ctx, "short"), a.Snapshot, activities.BatchInput{
			Key: w.key(StepSnapshot, b.ID()), Batch: b,
		}).Get(ctx, &w.snaps[i])
	})
}

// finalSync waits until the DR replicas hold the snapshot.
func (w *failover) finalSync(ctx workflow.Context) error {
	return w.eachBatch(ctx, func(ctx workflow.Context, i int, b activities.Batch) error {
		return workflow.ExecuteActivity(w.opts(ctx, "wait"), a.FinalSync, activities.SyncInput{
			Key: w.key(StepFinalSync, b.ID()), Batch: b, Snapshot: w.snaps[i],
		}).Get(ctx, nil)
	})
}

func (w *failover) stopPrimary(ctx workflow.Context) error {
	in := activities.ServersInput{Key: w.key(StepStopPrimary, w.plan.SourceSite), Site: w.plan.SourceSite, Servers: w.servers()}
	w.compensate(StepStopPrimary, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.StartServers, activities.ServersInput{
			Key: w.key("restart_primary", w.plan.SourceSite), Site: in.Site, Servers: in.Servers,
		}).Get(ctx, nil)
	})
	return workflow.ExecuteActivity(w.opts(ctx, "short"), a.StopServers, in).Get(ctx, nil)
}

func (w *failover) demote(ctx workflow.Context) error {
	w.compensate(StepDemote, func(ctx workflow.Context) error {
		return w.eachBatch(ctx, func(ctx workflow.Context, _ int, b activities.Batch) error {
			return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.Undemote, activities.BatchInput{
				Key: w.key("undo_demote", b.ID()), Batch: b,
			}).Get(ctx, nil)
		})
	})
	return w.eachBatch(ctx, func(ctx workflow.Context, _ int, b activities.Batch) error {
		return workflow.ExecuteActivity(w.opts(ctx, "short"), a.Demote, activities.BatchInput{
			Key: w.key(StepDemote, b.ID()), Batch: b,
		}).Get(ctx, nil)
	})
}

// fence cuts the old primary's backends off from writes before anything is
// promoted, so there are never two writable actives (invariant 1).
func (w *failover) fence(ctx workflow.Context) error {
	if w.in.FencedOutOfBand != "" {
		// No activity: the operator vouched for the fence (an input of the
		// run, so replays see the same branch).
		w.flag("fenced-out-of-band")
		w.step(StepFence).Note = fmt.Sprintf("fenced out of band, as %s stated: %s", orUnknown(w.in.RequestedBy), w.in.FencedOutOfBand)
		return nil
	}
	epoch := workflow.GetInfo(ctx).WorkflowStartTime.UnixNano()
	if w.in.FenceEpoch != 0 {
		epoch = w.in.FenceEpoch
	}
	sources := w.sourceBackends()
	w.compensate(StepFence, func(ctx workflow.Context) error {
		if w.in.FenceEpoch != 0 {
			return nil // the caller's fence, the caller's to lift
		}
		return w.each(ctx, len(sources), func(ctx workflow.Context, i int) error {
			return workflow.ExecuteActivity(w.opts(ctx, "compensate"), a.Unfence, activities.FenceInput{
				Key: w.key("unfence", sources[i]), Backend: sources[i], Epoch: epoch,
			}).Get(ctx, nil)
		})
	})
	results := make([]activities.FenceResult, len(sources))
	err := w.each(ctx, len(sources), func(ctx workflow.Context, i int) error {
		return workflow.ExecuteActivity(w.opts(ctx, "short"), a.Fence, activities.FenceInput{
			Key: w.key(StepFence, sources[i]), Backend: sources[i], Epoch: epoch,
		}).Get(ctx, &results[i])
	})
	if err != nil {
		return err
	}
	note := fmt.Sprintf("fencing epoch %d", epoch)
	for i, r := range results {
		if !r.Frozen {
			note += "; " + sources[i] + " unreachable: fenced, not frozen"
		}
	}
	w.step(StepFence).Note = note
	return nil
}

func orUnknown(who string) string {
	if who == "" {
		return "the requester"
	}
	return who
}

func (w *failover) sourceBackends() []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range w.plan.Batches {
		if !seen[b.Source] {
			seen[b.Source] = true
			out = append(out, b.Source)
		}
	}
	return out
}

// promote makes the DR replicas active, forced in an unplanned run. Once any
// batch is promoted there is no way back: later failures pause the run.
func (w *failover) promote(ctx workflow.Context) error {
	force := w.in.Mode == ferry.ModeUnplanned
	// Kept across an operator's retries: a batch promoted by an earlier
	// attempt is not promoted again, and its result still counts.
	if w.promoted == nil {
		w.promoted = make([]drivers.PromoteResult, len(w.plan.Batches))
		w.promotedOK = make([]bool, len(w.plan.Batches))
	}
	results, done := w.promoted, w.promotedOK
	err := w.eachBatch(ctx, func(ctx workflow.Context, i int, b activities.Batch) error {
		if done[i] {
			return nil
		}
		err := workflow.ExecuteActivity(w.opts(ctx, "long"), a.Promote, activities.PromoteInput{
			Key: w.key(StepPromote, b.ID()), Batch: b, Force: force,
		}).Get(ctx, &results[i])
		done[i] = err == nil
		return err
	})
	for _, d := range done {
		if d {
			w.committed = true
		}
	}
	if w.committed {
		// The compensations undo what promote has made permanent: forget them.
		w.compensations = nil
	}
	if err != nil {
		if w.committed {
			var on, off []string
			for i, b := range w.plan.Batches {
				if done[i] {
					on = append(on, b.Target)
				} else {
					off = append(off, b.Target)
				}
			}
			w.committedNote = fmt.Sprintf("the group is split: promoted on %s, not on %s", strings.Join(on, ", "), strings.Join(off, ", "))
			// Not all of the group is active at the target: record no
			// active site rather than a wrong one.
			w.activeSite = ""
		}
		return err
	}
	w.committedNote = "the group is active at " + w.plan.TargetSite
	w.activeSite = w.plan.TargetSite
	w.dataLoss, w.writesLost = 0, 0
	for _, r := range results {
		for _, p := range r.Points {
			if p.DataLoss > w.dataLoss {
				w.dataLoss = p.DataLoss
			}
			if p.LostWrites < 0 || w.writesLost < 0 {
				w.writesLost = -1
			} else {
				w.writesLost += p.LostWrites
			}
		}
	}
	rpo := w.dataLoss.Seconds()
	lost := w.writesLost
	w.run.RPOSeconds, w.run.WritesLost = &rpo, &lost
	lostText := fmt.Sprint(w.writesLost)
	if w.writesLost < 0 {
		lostText = "unknown (the storage cannot tell)"
	}
	w.step(StepPromote).Note = fmt.Sprintf("data loss window %s, writes lost %s", w.dataLoss, lostText)
	return nil
}

// failoverCompleted tells every member of every target backend's cluster
// that the backend moved, and checks each one (invariant 2).
func (w *failover) failoverCompleted(ctx workflow.Context) error {
	type target struct {
		backend, id string
		members     []string
	}
	var targets []target
	seen := map[string]bool{}
	for _, b := range w.plan.Batches {
		if !seen[b.Target] && len(b.TargetMembers) > 0 {
			seen[b.Target] = true
			targets = append(targets, target{b.Target, b.TargetID, b.TargetMembers})
		}
	}
	if len(targets) == 0 {
		w.step(StepFailoverCompleted).Note = "no active-active cluster members to notify"
		return nil
	}
	return w.each(ctx, len(targets), func(ctx workflow.Context, i int) error {
		t := targets[i]
		// The same keys on an operator's retry (not w.key's "#2"): the
		// members that acknowledged the first time are replayed, and only
		// the ones that did not are told again (docs/simulator.md).
		return workflow.ExecuteActivity(w.opts(ctx, "short"), a.FailoverCompleted, activities.CompletedInput{
			Key: activities.Key(w.runID, StepFailoverCompleted, t.backend), Backend: t.backend, Members: t.members, ActiveBackendID: t.id,
		}).Get(ctx, nil)
	})
}

func (w *failover) mappings() []drivers.NetworkMapping {
	var out []drivers.NetworkMapping
	for _, m := range w.plan.Group.NetworkMappings {
		from, to := m.Production, m.DR
		if w.plan.TargetSite == w.plan.Group.PrimarySite {
			from, to = m.DR, m.Production // failing back home
		}
		out = append(out, drivers.NetworkMapping{From: from, To: to})
	}
	return out
}

func (w *failover) network(ctx workflow.Context) error {
	m := w.mappings()
	if len(m) == 0 {
		w.step(StepNetwork).Note = "no network mappings"
		return nil
	}
	return workflow.ExecuteActivity(w.opts(ctx, "short"), a.MapNetworks, activities.NetworkInput{
		Key: w.key(StepNetwork, w.plan.TargetSite), Site: w.plan.TargetSite, Mappings: m,
	}).Get(ctx, nil)
}

// bootTier boots one tier at the target site and returns when every server
// of it is healthy: the next tier starts only then.
func (w *failover) bootTier(ctx workflow.Context, t ferry.Tier) error {
	mapped := map[string]string{}
	for _, m := range w.mappings() {
		mapped[m.From] = m.To
	}
	specs := make([]drivers.BootSpec, 0, len(t.Servers))
	for _, s := range t.Servers {
		spec := drivers.BootSpec{Name: s.Name, Volumes: s.Volumes}
		for _, n := range s.Networks {
			if to, ok := mapped[n]; ok {
				n = to
			}
			spec.Networks = append(spec.Networks, n)
		}
		specs = append(specs, spec)
	}
	return workflow.ExecuteActivity(w.opts(ctx, "long"), a.BootTier, activities.BootInput{
		Key: w.key(BootStep(t.Name), w.plan.TargetSite), Site: w.plan.TargetSite, Tier: t.Name, Servers: specs,
	}).Get(ctx, nil)
}

func (w *failover) dns(ctx workflow.Context) error {
	g := w.plan.Group
	if len(g.DNSRecords) == 0 {
		w.step(StepDNS).Note = "no DNS records"
		return nil
	}
	recs := make([]drivers.Record, 0, len(g.DNSRecords))
	for _, r := range g.DNSRecords {
		v := r.DR
		if w.plan.TargetSite == g.PrimarySite {
			v = r.Primary
		}
		recs = append(recs, drivers.Record{Name: r.Name, Type: r.Type, TTL: r.TTL, Value: v})
	}
	return workflow.ExecuteActivity(w.opts(ctx, "short"), a.RepointDNS, activities.DNSInput{
		Key: w.key(StepDNS, w.plan.TargetSite), Records: recs,
	}).Get(ctx, nil)
}

func (w *failover) verify(ctx workflow.Context) error {
	g := w.plan.Group
	if len(g.Checks) == 0 {
		w.step(StepVerify).Note = "no checks defined"
	} else {
		checks := checkSpecs(g)
		network := ""
		if m := w.mappings(); len(m) > 0 {
			network = m[0].To
		}
		var results []drivers.CheckResult
		err := workflow.ExecuteActivity(w.opts(ctx, "short"), a.Verify, activities.VerifyInput{
			Site: w.plan.TargetSite, Network: network, Checks: checks,
		}).Get(ctx, &results)
		if err != nil {
			return err
		}
		w.run.Checks = w.run.Checks[:0]
		for _, r := range results {
			w.run.Checks = append(w.run.Checks, ferry.CheckOutcome{Name: r.Name, Passed: r.Passed, Detail: r.Detail})
		}
		w.step(StepVerify).Note = fmt.Sprintf("%d checks passed", len(results))
	}
	// RTO: from the start of the run to verified service.
	rto := now(ctx).Sub(w.run.Created).Seconds()
	w.run.RTOSeconds = &rto
	return nil
}

// eachBatch runs fn for every batch concurrently and waits for all.
func (w *failover) eachBatch(ctx workflow.Context, fn func(ctx workflow.Context, i int, b activities.Batch) error) error {
	return w.each(ctx, len(w.plan.Batches), func(ctx workflow.Context, i int) error {
		return fn(ctx, i, w.plan.Batches[i])
	})
}

// checkSpecs are a group's verification checks as the verify port takes
// them.
func checkSpecs(g ferry.Group) []drivers.CheckSpec {
	specs := make([]drivers.CheckSpec, 0, len(g.Checks))
	for _, c := range g.Checks {
		specs = append(specs, drivers.CheckSpec{Name: c.Name, Type: c.Type, Target: c.Target, Expect: c.Expect})
	}
	return specs
}
