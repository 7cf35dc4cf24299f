package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
)

// PutGroup creates or replaces a protection group. Its observed active_site
// is taken from g only when the group is new; a replace keeps it.
func (s *Store) PutGroup(ctx context.Context, g ferry.Group) (bool, error) {
	var created bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		created, err = putGroup(ctx, tx, g)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: put group %q: %w", g.Name, err)
	}
	return created, nil
}

func putGroup(ctx context.Context, q querier, g ferry.Group) (bool, error) {
	if g.Name == "" {
		return false, ferry.Invalid("name", "is required")
	}
	for _, f := range []struct{ field, site string }{
		{"primary_site", g.PrimarySite},
		{"dr_site", g.DRSite},
		{"active_site", g.ActiveSite},
	} {
		if f.site == "" {
			if f.field == "active_site" {
				continue
			}
			return false, ferry.Invalid(f.field, "is required")
		}
		ok, err := lockSite(ctx, q, f.site)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, ferry.Invalid(f.field, "site %q does not exist", f.site)
		}
	}
	if g.DRSite == g.PrimarySite {
		return false, ferry.Invalid("dr_site", "is the primary site %q; a group needs a different DR site", g.PrimarySite)
	}
	var backends []string
	seen := map[string]bool{}
	checkBackend := func(field, b string) error {
		if b == "" {
			return ferry.Invalid(field, "is required")
		}
		if seen[b] {
			return nil
		}
		ok, err := lockBackend(ctx, q, b)
		if err != nil {
			return err
		}
		if !ok {
			return ferry.Invalid(field, "backend %q does not exist", b)
		}
		seen[b] = true
		backends = append(backends, b)
		return nil
	}
	for i, v := range g.Volumes {
		if err := checkBackend(fmt.Sprintf("volumes[%d].backend", i), v.Backend); err != nil {
			return false, err
		}
	}
	for i, sh := range g.Shares {
		if err := checkBackend(fmt.Sprintf("shares[%d].backend", i), sh.Backend); err != nil {
			return false, err
		}
	}

	activeSite := g.ActiveSite
	g.ActiveSite = "" // the column holds it
	spec, err := json.Marshal(g)
	if err != nil {
		return false, err
	}
	var created bool
	err = q.QueryRow(ctx, `
		INSERT INTO protection_groups (name, project, primary_site, dr_site, active_site, priority, spec)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7)
		ON CONFLICT (name) DO UPDATE
		SET project = EXCLUDED.project, primary_site = EXCLUDED.primary_site, dr_site = EXCLUDED.dr_site,
		    priority = EXCLUDED.priority, spec = EXCLUDED.spec, updated = now()
		RETURNING (xmax = 0)`,
		g.Name, g.Project, g.PrimarySite, g.DRSite, activeSite, g.Priority, spec).Scan(&created)
	if err != nil {
		return false, mapPutErr(err)
	}
	if backends == nil {
		backends = []string{}
	}
	if _, err := q.Exec(ctx, `
		DELETE FROM group_backends WHERE group_name = $1 AND NOT (backend = ANY($2::text[]))`,
		g.Name, backends); err != nil {
		return false, err
	}
	if _, err := q.Exec(ctx, `
		INSERT INTO group_backends (group_name, backend) SELECT $1, unnest($2::text[])
		ON CONFLICT DO NOTHING`, g.Name, backends); err != nil {
		return false, mapPutErr(err)
	}
	return created, nil
}

const groupColumns = `name, COALESCE(active_site, ''), spec`

func scanGroup(row pgx.Row) (ferry.Group, error) {
	var name, active string
	var spec []byte
	if err := row.Scan(&name, &active, &spec); err != nil {
		return ferry.Group{}, err
	}
	var g ferry.Group
	if err := json.Unmarshal(spec, &g); err != nil {
		return ferry.Group{}, fmt.Errorf("decode group %q: %w", name, err)
	}
	g.Name = name
	g.ActiveSite = active
	return g, nil
}

// GetGroup returns the named group.
func (s *Store) GetGroup(ctx context.Context, name string) (ferry.Group, error) {
	g, err := scanGroup(s.pool.QueryRow(ctx, `SELECT `+groupColumns+` FROM protection_groups WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return ferry.Group{}, fmt.Errorf("store: get group: %w", ferry.Errorf(ferry.ENotFound, "group %q not found", name))
	}
	if err != nil {
		return ferry.Group{}, fmt.Errorf("store: get group %q: %w", name, err)
	}
	return g, nil
}

// ListGroups returns a page of groups ordered by name.
func (s *Store) ListGroups(ctx context.Context, p ferry.Page) ([]ferry.Group, string, error) {
	return s.listGroups(ctx, nil, p)
}

// ListProjectGroups returns a page of one project's groups ordered by name.
func (s *Store) ListProjectGroups(ctx context.Context, project string, p ferry.Page) ([]ferry.Group, string, error) {
	return s.listGroups(ctx, &project, p)
}

func (s *Store) listGroups(ctx context.Context, project *string, p ferry.Page) ([]ferry.Group, string, error) {
	after, err := afterName(p.Token)
	if err != nil {
		return nil, "", fmt.Errorf("store: list groups: %w", err)
	}
	limit := pageLimit(p)
	rows, err := s.pool.Query(ctx, `SELECT `+groupColumns+` FROM protection_groups
		WHERE name > $1 AND ($3::text IS NULL OR project = $3) ORDER BY name LIMIT $2`, after, limit+1, project)
	if err != nil {
		return nil, "", fmt.Errorf("store: list groups: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.Group, error) { return scanGroup(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list groups: %w", err)
	}
	next := ""
	if len(gs) > limit {
		gs = gs[:limit]
		next = nameToken(gs[limit-1].Name)
	}
	return gs, next, nil
}

// DeleteGroup deletes a group, its replicas' records with it. A group with a
// run whose recorded state is not final cannot be deleted.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM protection_groups WHERE name = $1 FOR UPDATE`, name).Scan(&exists); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ferry.Errorf(ferry.ENotFound, "group %q not found", name)
			}
			return err
		}
		var id, state string
		err := tx.QueryRow(ctx, `SELECT id, state FROM runs WHERE group_name = $1 AND `+activeRunSQL+`
			ORDER BY created DESC, id DESC LIMIT 1`, name).Scan(&id, &state)
		if err == nil {
			return ferry.Errorf(ferry.EConflict, "group %q is used by run %q (%s)", name, id, state)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM protection_groups WHERE name = $1`, name)
		return mapDeleteErr(err)
	})
	if err != nil {
		return fmt.Errorf("store: delete group %q: %w", name, err)
	}
	return nil
}

// SetGroupActiveSite records where a group runs; "" means its primary site.
func (s *Store) SetGroupActiveSite(ctx context.Context, name, site string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if site != "" {
			ok, err := lockSite(ctx, tx, site)
			if err != nil {
				return err
			}
			if !ok {
				return ferry.Invalid("active_site", "site %q does not exist", site)
			}
		}
		tag, err := tx.Exec(ctx, `
			UPDATE protection_groups SET active_site = NULLIF($2, ''), updated = now() WHERE name = $1`, name, site)
		if err != nil {
			return mapPutErr(err)
		}
		if tag.RowsAffected() == 0 {
			return ferry.Errorf(ferry.ENotFound, "group %q not found", name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: set group %q active site: %w", name, err)
	}
	return nil
}

// GroupsVersion names the state of the groups table: it changes with every
// insert, update and delete of a group (each writes a row version with a
// new xmin), so an answer built from the table at one version may be served
// again while the version is the same. It reads no group's spec.
func (s *Store) GroupsVersion(ctx context.Context) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT count(*)::text || ':' ||
		COALESCE(sum(hashtextextended(name || ':' || xmin::text, 0)), 0)::text FROM protection_groups`).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("store: groups version: %w", err)
	}
	return v, nil
}
