package server

import (
	"context"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

func init() { kinds[ferry.KindDrill] = (*server).planDrill }

// planDrill checks a drill request: a group, and optionally how long to
// hold the bubble open. A drill holds the group's lock like a mutating run,
// so a second drill, or a drill during a failover, is refused with 409.
func (s *server) planDrill(ctx context.Context, req startRunRequest) (launch, error) {
	if req.Group == "" {
		return launch{}, ferry.Invalid("group", "is required for a drill")
	}
	for _, f := range []struct{ name, value string }{
		{"site", req.Site}, {"backend", req.Backend}, {"share", req.Share}, {"mode", req.Mode},
	} {
		if f.value != "" {
			return launch{}, ferry.Invalid(f.name, "a drill's scope is a group; %s is not used", f.name)
		}
	}
	g, err := s.Store.GetGroup(ctx, req.Group)
	if ferry.ErrorCode(err) == ferry.ENotFound {
		return launch{}, ferry.Invalid("group", "group %q does not exist", req.Group)
	} else if err != nil {
		return launch{}, err
	}
	site := drillSite(g)
	if req.Target != "" && req.Target != site {
		return launch{}, ferry.Invalid("target", "a drill of group %q runs at site %q, where its replicas are, not %q", g.Name, site, req.Target)
	}
	if err := checkHold(req.Options.HoldSeconds, "options.hold_seconds"); err != nil {
		return launch{}, err
	}
	return launch{
		WorkflowID:   workflows.GroupWorkflowID(g.Name),
		WorkflowName: workflows.DrillWorkflowName,
		Lock:         g.Name,
		Input: workflows.DrillInput{
			Group:       g.Name,
			RequestedBy: req.RequestedBy,
			HoldSeconds: req.Options.HoldSeconds,
		},
		Run: ferry.Run{Kind: ferry.KindDrill, Group: g.Name, Site: site, RequestedBy: req.RequestedBy},
	}, nil
}

// drillSite is where a group's drill builds its bubble: the site holding
// its replicas, the DR site unless the group has failed over there.
func drillSite(g ferry.Group) string {
	if g.ActiveSite != "" && g.ActiveSite != g.PrimarySite {
		return g.PrimarySite
	}
	return g.DRSite
}

func checkHold(secs int, field string) error {
	if secs < 0 || secs > int(workflows.MaxDrillHold.Seconds()) {
		return ferry.Invalid(field, "must be from 0 to %d seconds, not %d", int(workflows.MaxDrillHold.Seconds()), secs)
	}
	return nil
}
