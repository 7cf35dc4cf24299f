package server

import (
	"context"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// The replication lifecycle of a group: protect, unprotect, reprotect,
// failback, suspend, resume. Each holds the group's workflow id.
func init() {
	for _, k := range []string{ferry.KindProtect, ferry.KindUnprotect, ferry.KindReprotect, ferry.KindFailback, ferry.KindSuspend, ferry.KindResume} {
		kinds[k] = planLifecycle(k)
	}
}

var lifecycleWorkflows = map[string]string{
	ferry.KindProtect:   workflows.ProtectWorkflowName,
	ferry.KindUnprotect: workflows.UnprotectWorkflowName,
	ferry.KindReprotect: workflows.ReprotectWorkflowName,
	ferry.KindFailback:  workflows.FailbackWorkflowName,
	ferry.KindSuspend:   workflows.SuspendWorkflowName,
	ferry.KindResume:    workflows.ResumeWorkflowName,
}

// planLifecycle checks a lifecycle request. The scope is a group; a
// failback is always planned and needs a group that runs away from home.
// Reprotect is allowed whether or not the group ever failed over: at home
// it resyncs the DR replicas from the primaries, which repairs a diverged
// or broken secondary and is what a failback's last stage does.
func planLifecycle(kind string) planner {
	return func(s *server, ctx context.Context, req startRunRequest) (launch, error) {
		if req.Group == "" {
			return launch{}, ferry.Invalid("group", "is required for a %s run", kind)
		}
		for _, f := range []struct{ name, value string }{{"site", req.Site}, {"backend", req.Backend}, {"share", req.Share}, {"target", req.Target}} {
			if f.value != "" {
				return launch{}, ferry.Invalid(f.name, "a %s run's scope is a group; %s is not used", kind, f.name)
			}
		}
		g, err := s.Store.GetGroup(ctx, req.Group)
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return launch{}, ferry.Invalid("group", "group %q does not exist", req.Group)
		} else if err != nil {
			return launch{}, err
		}
		active := g.ActiveSite
		if active == "" {
			active = g.PrimarySite
		}
		// The run's site is the side it acts toward: where the secondaries
		// are (or go), home for a failback.
		peer := g.PrimarySite
		if active == g.PrimarySite {
			peer = g.DRSite
		}
		run := ferry.Run{Kind: kind, Group: g.Name, Site: peer, RequestedBy: req.RequestedBy}
		switch kind {
		case ferry.KindFailback:
			if req.Mode != "" && req.Mode != ferry.ModePlanned {
				return launch{}, ferry.Invalid("mode", "a failback is always %s, not %q", ferry.ModePlanned, req.Mode)
			}
			if active == g.PrimarySite {
				return launch{}, ferry.Invalid("group", "group %q already runs at its primary site %q: nothing to fail back", g.Name, g.PrimarySite)
			}
			run.Site, run.Mode = g.PrimarySite, ferry.ModePlanned
			switch req.Options.QuiescePolicy {
			case "", ferry.QuiesceAbort, ferry.QuiesceContinue:
			default:
				return launch{}, ferry.Invalid("options.quiesce_policy", "must be %s or %s, not %q",
					ferry.QuiesceAbort, ferry.QuiesceContinue, req.Options.QuiescePolicy)
			}
		default:
			if req.Mode != "" {
				return launch{}, ferry.Invalid("mode", "a %s run has no mode", kind)
			}
			if req.Options.QuiescePolicy != "" {
				return launch{}, ferry.Invalid("options.quiesce_policy", "applies to failover and failback runs only")
			}
		}
		return launch{
			WorkflowID:   workflows.GroupWorkflowID(g.Name),
			WorkflowName: lifecycleWorkflows[kind],
			Lock:         g.Name,
			Input: workflows.LifecycleInput{
				Group:         g.Name,
				RequestedBy:   req.RequestedBy,
				SkipApproval:  req.Options.SkipApproval,
				QuiescePolicy: req.Options.QuiescePolicy,
			},
			Run: run,
		}, nil
	}
}
