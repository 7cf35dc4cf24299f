package server

import (
	"context"
	"slices"
	"strings"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

func init() {
	kinds[ferry.KindBackendFailover] = (*server).planBackendFailover
	kinds[ferry.KindSharePromote] = (*server).planSharePromote
}

// notTaken refuses the request fields a kind does not take, so a typo in the
// scope is an error and not a surprise.
func notTaken(kind string, req startRunRequest, fields ...string) error {
	values := map[string]string{"group": req.Group, "site": req.Site, "backend": req.Backend, "share": req.Share, "mode": req.Mode}
	for _, f := range fields {
		if values[f] != "" {
			return ferry.Invalid(f, "a %s run does not take %s", kind, f)
		}
	}
	return nil
}

// planBackendFailover checks a backend failover: the backend must exist,
// and the target must be one of its replication target ids or "default"
// (fail back); "" is its first target.
func (s *server) planBackendFailover(ctx context.Context, req startRunRequest) (launch, error) {
	if req.Backend == "" {
		return launch{}, ferry.Invalid("backend", "is required for a backend failover")
	}
	if err := notTaken(ferry.KindBackendFailover, req, "group", "site", "share", "mode"); err != nil {
		return launch{}, err
	}
	b, err := s.Store.GetBackend(ctx, req.Backend)
	if ferry.ErrorCode(err) == ferry.ENotFound {
		return launch{}, ferry.Invalid("backend", "backend %q does not exist", req.Backend)
	} else if err != nil {
		return launch{}, err
	}
	var ids []string
	site := ""
	for _, t := range b.ReplicationTargets {
		ids = append(ids, t.ID)
		if t.ID == req.Target || (req.Target == "" && site == "") {
			if tb, err := s.Store.GetBackend(ctx, t.Backend); err == nil {
				site = tb.Site
			}
		}
	}
	switch {
	case req.Target == ferry.ActiveBackendDefault:
		site = b.Site
	case req.Target == "" && len(ids) == 0:
		return launch{}, ferry.Invalid("backend", "backend %q has no replication targets to fail over to", b.Name)
	case req.Target != "" && !slices.Contains(ids, req.Target):
		return launch{}, ferry.Invalid("target", "backend %q has no replication target %q (one of [%s], or %q to fail back)",
			b.Name, req.Target, strings.Join(ids, ", "), ferry.ActiveBackendDefault)
	}
	return launch{
		WorkflowID:   workflows.BackendWorkflowID(b.Name),
		WorkflowName: workflows.BackendFailoverWorkflowName,
		Input:        workflows.BackendFailoverInput{Backend: b.Name, TargetID: req.Target, RequestedBy: req.RequestedBy},
		Run:          ferry.Run{Kind: ferry.KindBackendFailover, Backend: b.Name, Site: site, RequestedBy: req.RequestedBy},
	}, nil
}

// planSharePromote checks the promote of one share replica: the share must
// belong to a group, and the target, if given, must be the site or backend
// of one of its replicas (its backend or that backend's targets).
func (s *server) planSharePromote(ctx context.Context, req startRunRequest) (launch, error) {
	if req.Share == "" {
		return launch{}, ferry.Invalid("share", "is required for a share promote")
	}
	if err := notTaken(ferry.KindSharePromote, req, "site", "backend", "mode"); err != nil {
		return launch{}, err
	}
	g, sh, err := s.shareGroup(ctx, req.Group, req.Share)
	if err != nil {
		return launch{}, err
	}
	site := ""
	if req.Target != "" {
		home, err := s.Store.GetBackend(ctx, sh.Backend)
		if err != nil {
			return launch{}, err
		}
		var where []string
		check := func(b ferry.Backend) {
			where = append(where, b.Name+" ("+b.Site+")")
			if req.Target == b.Name || req.Target == b.Site {
				site = b.Site
			}
		}
		check(home)
		for _, t := range home.ReplicationTargets {
			if tb, err := s.Store.GetBackend(ctx, t.Backend); err == nil {
				check(tb)
			}
		}
		if site == "" {
			return launch{}, ferry.Invalid("target", "share %q has no replica at %q (its backends: %s)", sh.Name, req.Target, strings.Join(where, ", "))
		}
	}
	return launch{
		WorkflowID:   workflows.GroupWorkflowID(g.Name),
		WorkflowName: workflows.SharePromoteWorkflowName,
		Lock:         g.Name,
		Input:        workflows.SharePromoteInput{Group: g.Name, Share: sh.Name, Target: req.Target, RequestedBy: req.RequestedBy},
		Run: ferry.Run{Kind: ferry.KindSharePromote, Group: g.Name, Site: site, RequestedBy: req.RequestedBy,
			RunDetails: ferry.RunDetails{Share: sh.Name}},
	}, nil
}

// shareGroup finds the group holding a share: the named group, or the
// one that lists it.
func (s *server) shareGroup(ctx context.Context, group, share string) (ferry.Group, ferry.Share, error) {
	find := func(g ferry.Group) (ferry.Share, bool) {
		for _, sh := range g.Shares {
			if sh.Name == share {
				return sh, true
			}
		}
		return ferry.Share{}, false
	}
	if group != "" {
		g, err := s.Store.GetGroup(ctx, group)
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return ferry.Group{}, ferry.Share{}, ferry.Invalid("group", "group %q does not exist", group)
		} else if err != nil {
			return ferry.Group{}, ferry.Share{}, err
		}
		sh, ok := find(g)
		if !ok {
			return ferry.Group{}, ferry.Share{}, ferry.Invalid("share", "group %q has no share %q", group, share)
		}
		return g, sh, nil
	}
	page := ferry.Page{Limit: 100}
	for {
		gs, next, err := s.Store.ListGroups(ctx, page)
		if err != nil {
			return ferry.Group{}, ferry.Share{}, err
		}
		for _, g := range gs {
			if sh, ok := find(g); ok {
				return g, sh, nil
			}
		}
		if next == "" {
			return ferry.Group{}, ferry.Share{}, ferry.Invalid("share", "share %q is not a share of any group", share)
		}
		page.Token = next
	}
}
