package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
)

// PutReplicas records the observed state of replicas of a group, each
// replacing the record of the same resource at the same site. Records of
// other replicas are kept. A replica's Group, when set, must be group; a zero
// Observed means now.
func (s *Store) PutReplicas(ctx context.Context, group string, rs []ferry.Replica) error {
	return s.putReplicas(ctx, group, rs, false)
}

// ReplaceReplicas records rs as the whole observed set of the group's
// replicas: records of replicas not in rs (removed by an unprotect) go.
func (s *Store) ReplaceReplicas(ctx context.Context, group string, rs []ferry.Replica) error {
	return s.putReplicas(ctx, group, rs, true)
}

func (s *Store) putReplicas(ctx context.Context, group string, rs []ferry.Replica, replace bool) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := lockRow(ctx, tx, `SELECT true FROM protection_groups WHERE name = $1 FOR KEY SHARE`, group)
		if err != nil {
			return err
		}
		if !ok {
			return ferry.Errorf(ferry.ENotFound, "group %q not found", group)
		}
		batch := &pgx.Batch{}
		now := time.Now()
		for i, r := range rs {
			field := fmt.Sprintf("replicas[%d]", i)
			switch {
			case r.Group != "" && r.Group != group:
				return ferry.Invalid(field+".group", "is %q, not %q", r.Group, group)
			case r.Resource == "":
				return ferry.Invalid(field+".resource", "is required")
			case r.Site == "":
				return ferry.Invalid(field+".site", "is required")
			}
			observed := r.Observed
			if observed.IsZero() {
				observed = now
			}
			batch.Queue(`
				INSERT INTO replicas (group_name, resource, kind, site, backend, state, seq, lag_seconds, observed)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (group_name, resource, site) DO UPDATE
				SET kind = EXCLUDED.kind, backend = EXCLUDED.backend, state = EXCLUDED.state,
				    seq = EXCLUDED.seq, lag_seconds = EXCLUDED.lag_seconds, observed = EXCLUDED.observed`,
				group, r.Resource, r.Kind, r.Site, r.Backend, r.State, r.Seq, r.LagSecs, observed)
		}
		if replace {
			resources := make([]string, len(rs))
			sites := make([]string, len(rs))
			for i, r := range rs {
				resources[i], sites[i] = r.Resource, r.Site
			}
			batch.Queue(`
				DELETE FROM replicas WHERE group_name = $1 AND (resource, site) NOT IN (
					SELECT * FROM unnest($2::text[], $3::text[]))`, group, resources, sites)
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return fmt.Errorf("store: put replicas of group %q: %w", group, err)
	}
	return nil
}

// ListReplicas returns the recorded replicas of a group, ordered by resource
// and site.
func (s *Store) ListReplicas(ctx context.Context, group string) ([]ferry.Replica, error) {
	var out []ferry.Replica
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := lockRow(ctx, tx, `SELECT true FROM protection_groups WHERE name = $1`, group)
		if err != nil {
			return err
		}
		if !ok {
			return ferry.Errorf(ferry.ENotFound, "group %q not found", group)
		}
		rows, err := tx.Query(ctx, `
			SELECT group_name, resource, kind, site, backend, state, seq, lag_seconds, observed
			FROM replicas WHERE group_name = $1 ORDER BY resource, site`, group)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ferry.Replica, error) {
			var r ferry.Replica
			err := row.Scan(&r.Group, &r.Resource, &r.Kind, &r.Site, &r.Backend, &r.State, &r.Seq, &r.LagSecs, &r.Observed)
			r.Observed = r.Observed.UTC()
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list replicas of group %q: %w", group, err)
	}
	return out, nil
}
