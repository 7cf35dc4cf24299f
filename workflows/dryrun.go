package workflows

import (
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

// DryRunInput asks what a run would do.
type DryRunInput struct {
	Kind     string         `json:"kind"`
	Failover *FailoverInput `json:"failover,omitempty"`
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
	return DryRun{}, temporal.NewNonRetryableApplicationError("no dry run for kind "+in.Kind, "unsupported", nil)
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
	for _, h := range g.Hooks {
		target := h.URL
		if target == "" {
			target = strings.Join(h.Command, " ")
		}
		d.Touches = append(d.Touches, fmt.Sprintf("hook %s at %s: %s", h.Name, h.Point, redactQuery(target)))
	}
	return d
}

// redactQuery drops a URL's query, where tokens travel.
func redactQuery(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}
