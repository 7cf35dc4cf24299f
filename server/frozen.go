package server

import (
	"context"
	"fmt"
	"sort"

	"github.com/ferrydr/ferry"
)

// refuseIfFrozen refuses a mutating run of a group while one of the
// backends holding its volumes or shares is frozen: a frozen backend takes
// no changes until it is thawed (Cinder's freeze).
func (s *server) refuseIfFrozen(ctx context.Context, group string) error {
	g, err := s.Store.GetGroup(ctx, group)
	if ferry.ErrorCode(err) == ferry.ENotFound {
		return nil // a run without a stored group is refused by its planner
	} else if err != nil {
		return err
	}
	backends := map[string]bool{}
	for _, v := range g.Volumes {
		backends[v.Backend] = true
	}
	for _, sh := range g.Shares {
		backends[sh.Backend] = true
	}
	// The backends that hold the group's copies elsewhere count too: after
	// a failover they hold the active ones.
	var targets []string
	for n := range backends {
		if b, err := s.Store.GetBackend(ctx, n); err == nil {
			for _, t := range b.ReplicationTargets {
				targets = append(targets, t.Backend)
			}
		}
	}
	for _, t := range targets {
		backends[t] = true
	}
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := s.Store.GetBackend(ctx, n)
		if err != nil {
			if ferry.ErrorCode(err) == ferry.ENotFound {
				continue
			}
			return err
		}
		if b.Frozen {
			return ferry.Errorf(ferry.EConflict, "%s", fmt.Sprintf("backend %q of group %q is frozen: thaw it before a mutating run", n, group))
		}
	}
	return nil
}
