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
)

// DryRunWorkflowName plans a run and checks its preconditions without
// changing anything. It runs as a workflow because preconditions are read
// through the drivers, which only activities may call.
const DryRunWorkflowName = "dry-run"

func init() { register(DryRunWorkflowName, DryRunWorkflow) }

// DryRunInput asks what a run would do: Kind and the input the run would
// start with (one of the pointers).
type DryRunInput struct {
	Kind      string                `json:"kind"`
	Failover  *FailoverInput        `json:"failover,omitempty"`
	Lifecycle *LifecycleInput       `json:"lifecycle,omitempty"`
	Drill     *DrillInput           `json:"drill,omitempty"`
	Backend   *BackendFailoverInput `json:"backend,omitempty"`
	Share     *SharePromoteInput    `json:"share,omitempty"`
	Evacuate  *EvacuateInput        `json:"evacuate,omitempty"`
}

// DryRun is what a run would do: its steps, what it would touch, and its
// preconditions, each passed or failed with why.
type DryRun struct {
	Kind          string                    `json:"kind"`
	Steps         []string                  `json:"steps"`
	Touches       []string                  `json:"touches"`
	Preconditions []activities.Precondition `json:"preconditions"`
	Warnings      []string                  `json:"warnings,omitempty"`
	// Ready is true when every precondition passed.
	Ready bool `json:"ready"`
}

// DryRunWorkflow answers a dry run. It only reads.
func DryRunWorkflow(ctx workflow.Context, in DryRunInput) (DryRun, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2},
	})
	switch {
	case in.Kind == ferry.KindFailover && in.Failover != nil:
		var as activities.Assessment
		f := in.Failover
		err := workflow.ExecuteActivity(ctx, a.AssessFailover, activities.PlanInput{
			Group: f.Group, Mode: f.Mode, TargetSite: f.TargetSite,
		}).Get(ctx, &as)
		if err != nil {
			return DryRun{}, err
		}
		return failoverDryRun(*f, as), nil
	}
	// The other kinds: their precheck is the precondition; what they would
	// touch follows from its plan.
	d := DryRun{Kind: in.Kind, Ready: true}
	var err error
	switch {
	case in.Lifecycle != nil:
		var p activities.LifecyclePlan
		err = workflow.ExecuteActivity(ctx, a.PlanLifecycle, activities.LifecycleInput{Group: in.Lifecycle.Group, Kind: in.Kind}).Get(ctx, &p)
		d.Steps = LifecycleSteps(in.Kind)
		d.Warnings = p.Warnings
		for _, b := range p.Batches {
			d.Touches = append(d.Touches, fmt.Sprintf("%s replication %s (%s) -> %s (%s): %s", in.Kind, b.Source, p.ActiveSite, b.Target, p.PeerSite, strings.Join(b.Resources, ", ")))
		}
	case in.Drill != nil:
		var p activities.DrillPlan
		err = workflow.ExecuteActivity(ctx, a.DrillPrecheck, activities.DrillPlanInput{Group: in.Drill.Group, LockWorkflowID: GroupWorkflowID(in.Drill.Group)}).Get(ctx, &p)
		d.Steps = DrillSteps(p.Group, in.Drill.HoldSeconds > 0)
		d.Warnings = p.Warnings
		d.Touches = append(d.Touches, fmt.Sprintf("create an isolated bubble network at %s (no route to production)", p.Site))
		for _, b := range p.Batches {
			d.Touches = append(d.Touches, fmt.Sprintf("clone the latest consistent point on %s: %s (replication keeps running)", b.Backend, strings.Join(b.Resources, ", ")))
		}
		for _, t := range p.Group.Tiers {
			d.Touches = append(d.Touches, fmt.Sprintf("boot tier %s inside the bubble (%d servers)", t.Name, len(t.Servers)))
		}
		d.Touches = append(d.Touches, "remove the bubble, the clones and the servers booted in it")
	case in.Backend != nil:
		var p activities.BackendPlan
		err = workflow.ExecuteActivity(ctx, a.BackendPrecheck, activities.BackendPlanInput{Backend: in.Backend.Backend, TargetID: in.Backend.TargetID}).Get(ctx, &p)
		d.Steps = BackendFailoverSteps()
		d.Warnings = p.Warnings
		if err == nil {
			d.Touches = append(d.Touches,
				fmt.Sprintf("freeze backend %s, then thaw it at the end", in.Backend.Backend),
				fmt.Sprintf("failover_host of %s to %s (%s at %s); resources not replicated there go to error", in.Backend.Backend, p.ActiveBackendID, p.TargetBackend, p.TargetSite),
				fmt.Sprintf("failover_completed (active_backend_id %s) to members of %s: %s", p.ActiveBackendID, p.Serving, strings.Join(p.Members, ", ")))
		}
	case in.Share != nil:
		var p activities.SharePlan
		err = workflow.ExecuteActivity(ctx, a.SharePrecheck, activities.SharePlanInput{Group: in.Share.Group, Share: in.Share.Share, Target: in.Share.Target}).Get(ctx, &p)
		d.Steps = SharePromoteSteps(p.Group)
		d.Warnings = p.Warnings
		if err == nil {
			d.Touches = append(d.Touches, fmt.Sprintf("demote share %s on %s (%s), promote its replica on %s (%s)", p.Share, p.ActiveBackend, p.ActiveSite, p.TargetBackend, p.TargetSite))
		}
	case in.Evacuate != nil:
		var p activities.EvacuationPlan
		err = workflow.ExecuteActivity(ctx, a.EvacuationGroups, activities.EvacuationInput{Site: in.Evacuate.Site}).Get(ctx, &p)
		for _, g := range p.Groups {
			d.Steps = append(d.Steps, EvacuateStep(g.Name))
			d.Touches = append(d.Touches, fmt.Sprintf("%s failover of group %s (priority %d) from %s to %s", modeOr(in.Evacuate.Mode), g.Name, g.Priority, g.SourceSite, g.TargetSite))
		}
		for _, sk := range p.Skipped {
			d.Warnings = append(d.Warnings, "left alone: "+sk)
		}
	default:
		return DryRun{}, temporal.NewNonRetryableApplicationError("no dry run for kind "+in.Kind, "unsupported", nil)
	}
	pre := activities.Precondition{Name: in.Kind + " precheck", Passed: err == nil}
	if err != nil {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || (app.Type() != activities.ErrPrecheck && app.Type() != activities.ErrPermanent) {
			return DryRun{}, err // could not check: not a verdict
		}
		pre.Detail = app.Message()
		d.Ready = false
	}
	d.Preconditions = append(d.Preconditions, pre)
	return d, nil
}

func modeOr(mode string) string {
	if mode == "" {
		return ferry.ModePlanned
	}
	return mode
}

func failoverDryRun(in FailoverInput, as activities.Assessment) DryRun {
	p := as.Plan
	d := DryRun{Kind: ferry.KindFailover, Preconditions: as.Preconditions, Warnings: p.Warnings, Ready: true}
	for _, c := range as.Preconditions {
		d.Ready = d.Ready && c.Passed
	}
	g := p.Group
	d.Steps = FailoverSteps(g, in.Mode)
	servers := func() string {
		var names []string
		for _, s := range g.Servers() {
			names = append(names, s.Name)
		}
		return strings.Join(names, ", ")
	}()
	if in.Mode == ferry.ModeUnplanned {
		for _, b := range p.Batches {
			d.Touches = append(d.Touches, fmt.Sprintf("fence and freeze backend %s at %s", b.Source, p.SourceSite))
		}
	} else {
		if g.Consistency == ferry.ConsistencyApplication {
			d.Touches = append(d.Touches, fmt.Sprintf("quiesce servers at %s: %s", p.SourceSite, servers))
		}
		d.Touches = append(d.Touches, fmt.Sprintf("stop servers at %s: %s", p.SourceSite, servers))
		for _, b := range p.Batches {
			d.Touches = append(d.Touches, fmt.Sprintf("snapshot and demote on backend %s: %s", b.Source, strings.Join(b.Resources, ", ")))
		}
	}
	for _, b := range p.Batches {
		verb := "promote"
		if in.Mode == ferry.ModeUnplanned {
			verb = "force-promote"
		}
		d.Touches = append(d.Touches, fmt.Sprintf("%s on backend %s: %s", verb, b.Target, strings.Join(b.Resources, ", ")))
		if len(b.TargetMembers) > 0 {
			members := append([]string(nil), b.TargetMembers...)
			sort.Strings(members)
			d.Touches = append(d.Touches, fmt.Sprintf("failover_completed (active_backend_id %s) to members of %s: %s", b.TargetID, b.Target, strings.Join(members, ", ")))
		}
	}
	for _, m := range g.NetworkMappings {
		from, to := m.Production, m.DR
		if p.TargetSite == g.PrimarySite {
			from, to = m.DR, m.Production
		}
		d.Touches = append(d.Touches, fmt.Sprintf("map network %s to %s at %s", from, to, p.TargetSite))
	}
	for _, t := range g.Tiers {
		var names []string
		for _, s := range t.Servers {
			names = append(names, s.Name)
		}
		d.Touches = append(d.Touches, fmt.Sprintf("boot tier %s at %s: %s", t.Name, p.TargetSite, strings.Join(names, ", ")))
	}
	for _, r := range g.DNSRecords {
		from, to := r.Primary, r.DR
		if p.TargetSite == g.PrimarySite {
			from, to = r.DR, r.Primary
		}
		d.Touches = append(d.Touches, fmt.Sprintf("DNS %s %s: %s -> %s (ttl %d)", r.Type, r.Name, from, to, r.TTL))
	}
	// Hooks by name only: their URLs and commands may hold credentials and
	// never leave the inventory.
	for _, h := range g.Hooks {
		d.Touches = append(d.Touches, fmt.Sprintf("hook %s at %s", h.Name, h.Point))
	}
	return d
}
