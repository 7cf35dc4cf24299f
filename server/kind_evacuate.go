package server

import (
	"context"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

func init() { kinds[ferry.KindEvacuate] = (*server).planEvacuate }

// maxEvacuateConcurrency bounds options.concurrency: far below Temporal's
// limit of pending children, and more parallel failovers than one site's
// storage would thank us for.
const maxEvacuateConcurrency = 100

// planEvacuate checks an evacuation of a site. Every group running at the
// site fails over to its own other site, so the request names no group and
// no target. The evacuation holds no group lock: each of its children holds
// its own, and one whose group is busy is reported in the run, not here.
func (s *server) planEvacuate(ctx context.Context, req startRunRequest) (launch, error) {
	if req.Site == "" {
		return launch{}, ferry.Invalid("site", "is required for an evacuation")
	}
	for _, f := range []struct{ name, value, why string }{
		{"group", req.Group, "an evacuation's scope is a site"},
		{"backend", req.Backend, "an evacuation's scope is a site"},
		{"share", req.Share, "an evacuation's scope is a site"},
		{"target", req.Target, "each group goes to its own DR site"},
	} {
		if f.value != "" {
			return launch{}, ferry.Invalid(f.name, "%s; %s is not used", f.why, f.name)
		}
	}
	if _, err := s.Store.GetSite(ctx, req.Site); ferry.ErrorCode(err) == ferry.ENotFound {
		return launch{}, ferry.Invalid("site", "site %q does not exist", req.Site)
	} else if err != nil {
		return launch{}, err
	}
	mode := req.Mode
	switch mode {
	case "":
		mode = ferry.ModePlanned
	case ferry.ModePlanned, ferry.ModeUnplanned:
	default:
		return launch{}, ferry.Invalid("mode", "must be %s or %s, not %q", ferry.ModePlanned, ferry.ModeUnplanned, mode)
	}
	conc := req.Options.Concurrency
	switch {
	case conc == 0:
		conc = workflows.DefaultEvacuateConcurrency
	case conc < 0 || conc > maxEvacuateConcurrency:
		return launch{}, ferry.Invalid("options.concurrency", "must be between 1 and %d, not %d", maxEvacuateConcurrency, conc)
	}
	if req.Options.QuiescePolicy != "" {
		return launch{}, ferry.Invalid("options.quiesce_policy", "an evacuation uses each group's own quiesce policy")
	}
	return launch{
		WorkflowID:   workflows.EvacuateWorkflowID(req.Site),
		WorkflowName: workflows.EvacuateWorkflowName,
		Input: workflows.EvacuateInput{
			Site:         req.Site,
			Mode:         mode,
			Concurrency:  conc,
			RequestedBy:  req.RequestedBy,
			SkipApproval: req.Options.SkipApproval,
		},
		Run: ferry.Run{Kind: ferry.KindEvacuate, Site: req.Site, Mode: mode, RequestedBy: req.RequestedBy},
	}, nil
}
