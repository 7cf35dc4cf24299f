package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
)

// PutSite creates or replaces a site.
func (s *Store) PutSite(ctx context.Context, site ferry.Site) (bool, error) {
	created, err := putSite(ctx, s.pool, site)
	if err != nil {
		return false, fmt.Errorf("store: put site %q: %w", site.Name, err)
	}
	return created, nil
}

func putSite(ctx context.Context, q querier, site ferry.Site) (bool, error) {
	if site.Name == "" {
		return false, ferry.Invalid("name", "is required")
	}
	var labels []byte
	if site.Labels != nil {
		var err error
		if labels, err = json.Marshal(site.Labels); err != nil {
			return false, err
		}
	}
	var created bool
	err := q.QueryRow(ctx, `
		INSERT INTO sites (name, description, labels) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE
		SET description = EXCLUDED.description, labels = EXCLUDED.labels, updated = now()
		RETURNING (xmax = 0)`, site.Name, site.Description, labels).Scan(&created)
	if err != nil {
		return false, mapPutErr(err)
	}
	return created, nil
}

// GetSite returns the named site.
func (s *Store) GetSite(ctx context.Context, name string) (ferry.Site, error) {
	row := s.pool.QueryRow(ctx, `SELECT name, description, labels FROM sites WHERE name = $1`, name)
	site, err := scanSite(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return ferry.Site{}, fmt.Errorf("store: get site: %w", ferry.Errorf(ferry.ENotFound, "site %q not found", name))
	}
	if err != nil {
		return ferry.Site{}, fmt.Errorf("store: get site %q: %w", name, err)
	}
	return site, nil
}

func scanSite(row pgx.Row) (ferry.Site, error) {
	var site ferry.Site
	var labels []byte
	if err := row.Scan(&site.Name, &site.Description, &labels); err != nil {
		return ferry.Site{}, err
	}
	if labels != nil {
		if err := json.Unmarshal(labels, &site.Labels); err != nil {
			return ferry.Site{}, err
		}
	}
	return site, nil
}

// ListSites returns a page of sites ordered by name.
func (s *Store) ListSites(ctx context.Context, p ferry.Page) ([]ferry.Site, string, error) {
	after, err := afterName(p.Token)
	if err != nil {
		return nil, "", fmt.Errorf("store: list sites: %w", err)
	}
	limit := pageLimit(p)
	rows, err := s.pool.Query(ctx, `
		SELECT name, description, labels FROM sites
		WHERE name > $1 ORDER BY name LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: list sites: %w", err)
	}
	sites, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.Site, error) { return scanSite(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list sites: %w", err)
	}
	next := ""
	if len(sites) > limit {
		sites = sites[:limit]
		next = nameToken(sites[limit-1].Name)
	}
	return sites, next, nil
}

// DeleteSite deletes a site no backend or group uses.
func (s *Store) DeleteSite(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM sites WHERE name = $1 FOR UPDATE`, name).Scan(&exists); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ferry.Errorf(ferry.ENotFound, "site %q not found", name)
			}
			return err
		}
		backends, err := names(ctx, tx, `SELECT name FROM backends WHERE site = $1 ORDER BY name LIMIT 6`, name)
		if err != nil {
			return err
		}
		groups, err := names(ctx, tx, `
			SELECT name FROM protection_groups
			WHERE primary_site = $1 OR dr_site = $1 OR active_site = $1
			ORDER BY name LIMIT 6`, name)
		if err != nil {
			return err
		}
		if len(backends)+len(groups) > 0 {
			return ferry.Errorf(ferry.EConflict, "site %q is used by %s", name, users(backends, groups))
		}
		_, err = tx.Exec(ctx, `DELETE FROM sites WHERE name = $1`, name)
		return mapDeleteErr(err)
	})
	if err != nil {
		return fmt.Errorf("store: delete site %q: %w", name, err)
	}
	return nil
}

// names runs a query that returns one text column.
func names(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// users describes who uses an item, e.g. `backend "b1", groups "g1", "g2"`.
// Each list holds at most 6 names; a sixth becomes "and more".
func users(backends, groups []string) string {
	var parts []string
	add := func(one, many string, ns []string) {
		if len(ns) == 0 {
			return
		}
		word := one
		if len(ns) > 1 {
			word = many
		}
		more := ""
		if len(ns) > 5 {
			ns, more = ns[:5], " and more"
		}
		q := make([]string, len(ns))
		for i, n := range ns {
			q[i] = fmt.Sprintf("%q", n)
		}
		parts = append(parts, word+" "+strings.Join(q, ", ")+more)
	}
	add("backend", "backends", backends)
	add("group", "groups", groups)
	return strings.Join(parts, " and ")
}
