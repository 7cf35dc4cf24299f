package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
)

// Member is one service host of a backend's active-active cluster, with the
// active_backend_id it last reported.
type Member struct {
	Name            string `json:"name"`
	ActiveBackendID string `json:"active_backend_id"`
}

// PutBackend creates or replaces a backend. The observed state
// (replication_status, active_backend_id, frozen, and each existing member's
// active_backend_id) is taken from b only when the backend is new; a replace
// keeps it, and members it adds start with the backend's active_backend_id.
func (s *Store) PutBackend(ctx context.Context, b ferry.Backend) (bool, error) {
	var created bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if created, err = putBackendCore(ctx, tx, b); err != nil {
			return err
		}
		return putBackendTargets(ctx, tx, b)
	})
	if err != nil {
		return false, fmt.Errorf("store: put backend %q: %w", b.Name, err)
	}
	return created, nil
}

// lockSite reports whether the site exists, holding a key-share lock on it so
// that it cannot be deleted before the transaction ends.
func lockSite(ctx context.Context, q querier, name string) (bool, error) {
	return lockRow(ctx, q, `SELECT true FROM sites WHERE name = $1 FOR KEY SHARE`, name)
}

func lockBackend(ctx context.Context, q querier, name string) (bool, error) {
	return lockRow(ctx, q, `SELECT true FROM backends WHERE name = $1 FOR KEY SHARE`, name)
}

func lockRow(ctx context.Context, q querier, sql, name string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, sql, name).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return ok, err
}

// putBackendCore upserts the backend row and its members, leaving the
// replication targets alone.
func putBackendCore(ctx context.Context, q querier, b ferry.Backend) (bool, error) {
	if b.Name == "" {
		return false, ferry.Invalid("name", "is required")
	}
	if b.Site == "" {
		return false, ferry.Invalid("site", "is required")
	}
	ok, err := lockSite(ctx, q, b.Site)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, ferry.Invalid("site", "site %q does not exist", b.Site)
	}
	members := make([]string, 0, len(b.Members))
	seen := make(map[string]bool, len(b.Members))
	for i, m := range b.Members {
		field := fmt.Sprintf("members[%d]", i)
		if m == "" {
			return false, ferry.Invalid(field, "is empty")
		}
		if seen[m] {
			return false, ferry.Invalid(field, "member %q is listed twice", m)
		}
		seen[m] = true
		members = append(members, m)
	}

	var created bool
	var activeID string
	err = q.QueryRow(ctx, `
		INSERT INTO backends (name, site, type, replication_status, active_backend_id, frozen)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (name) DO UPDATE
		SET site = EXCLUDED.site, type = EXCLUDED.type, updated = now()
		RETURNING (xmax = 0), active_backend_id`,
		b.Name, b.Site, b.Type, b.ReplicationStatus, b.ActiveBackendID, b.Frozen).Scan(&created, &activeID)
	if err != nil {
		return false, mapPutErr(err)
	}
	if _, err := q.Exec(ctx, `
		DELETE FROM backend_members WHERE backend = $1 AND NOT (member = ANY($2::text[]))`,
		b.Name, members); err != nil {
		return false, err
	}
	if _, err := q.Exec(ctx, `
		INSERT INTO backend_members (backend, member, position, active_backend_id)
		SELECT $1, m, ord - 1, $3 FROM unnest($2::text[]) WITH ORDINALITY AS t(m, ord)
		ON CONFLICT (backend, member) DO UPDATE SET position = EXCLUDED.position`,
		b.Name, members, activeID); err != nil {
		return false, mapPutErr(err)
	}
	return created, nil
}

// putBackendTargets replaces the backend's replication targets; each target
// backend must exist.
func putBackendTargets(ctx context.Context, q querier, b ferry.Backend) error {
	ids := make([]string, len(b.ReplicationTargets))
	backends := make([]string, len(b.ReplicationTargets))
	seen := make(map[string]bool, len(b.ReplicationTargets))
	for i, t := range b.ReplicationTargets {
		field := fmt.Sprintf("replication_targets[%d]", i)
		if t.ID == "" {
			return ferry.Invalid(field+".id", "is required")
		}
		if seen[t.ID] {
			return ferry.Invalid(field+".id", "target id %q is listed twice", t.ID)
		}
		seen[t.ID] = true
		if t.Backend == "" {
			return ferry.Invalid(field+".backend", "is required")
		}
		if t.Backend != b.Name {
			ok, err := lockBackend(ctx, q, t.Backend)
			if err != nil {
				return err
			}
			if !ok {
				return ferry.Invalid(field+".backend", "backend %q does not exist", t.Backend)
			}
		}
		ids[i], backends[i] = t.ID, t.Backend
	}
	if _, err := q.Exec(ctx, `DELETE FROM backend_replication_targets WHERE backend = $1`, b.Name); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `
		INSERT INTO backend_replication_targets (backend, target_id, position, target_backend)
		SELECT $1, t.id, t.ord - 1, t.backend
		FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(id, backend, ord)`,
		b.Name, ids, backends); err != nil {
		return mapPutErr(err)
	}
	return nil
}

const backendColumns = `name, site, type, replication_status, active_backend_id, frozen`

func scanBackend(row pgx.Row) (ferry.Backend, error) {
	var b ferry.Backend
	err := row.Scan(&b.Name, &b.Site, &b.Type, &b.ReplicationStatus, &b.ActiveBackendID, &b.Frozen)
	return b, err
}

// fillBackends loads the members and replication targets of bs.
func fillBackends(ctx context.Context, q querier, bs []ferry.Backend) error {
	if len(bs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(bs))
	nameList := make([]string, len(bs))
	for i, b := range bs {
		idx[b.Name] = i
		nameList[i] = b.Name
	}
	rows, err := q.Query(ctx, `
		SELECT backend, member FROM backend_members
		WHERE backend = ANY($1) ORDER BY backend, position`, nameList)
	if err != nil {
		return err
	}
	var backend, member string
	_, err = pgx.ForEachRow(rows, []any{&backend, &member}, func() error {
		b := &bs[idx[backend]]
		b.Members = append(b.Members, member)
		return nil
	})
	if err != nil {
		return err
	}
	rows, err = q.Query(ctx, `
		SELECT backend, target_id, target_backend FROM backend_replication_targets
		WHERE backend = ANY($1) ORDER BY backend, position`, nameList)
	if err != nil {
		return err
	}
	var t ferry.ReplicationTarget
	_, err = pgx.ForEachRow(rows, []any{&backend, &t.ID, &t.Backend}, func() error {
		b := &bs[idx[backend]]
		b.ReplicationTargets = append(b.ReplicationTargets, t)
		return nil
	})
	return err
}

// GetBackend returns the named backend with its members and targets.
func (s *Store) GetBackend(ctx context.Context, name string) (ferry.Backend, error) {
	b, err := scanBackend(s.pool.QueryRow(ctx, `SELECT `+backendColumns+` FROM backends WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return ferry.Backend{}, fmt.Errorf("store: get backend: %w", ferry.Errorf(ferry.ENotFound, "backend %q not found", name))
	}
	if err != nil {
		return ferry.Backend{}, fmt.Errorf("store: get backend %q: %w", name, err)
	}
	bs := []ferry.Backend{b}
	if err := fillBackends(ctx, s.pool, bs); err != nil {
		return ferry.Backend{}, fmt.Errorf("store: get backend %q: %w", name, err)
	}
	return bs[0], nil
}

// ListBackends returns a page of backends ordered by name.
func (s *Store) ListBackends(ctx context.Context, p ferry.Page) ([]ferry.Backend, string, error) {
	after, err := afterName(p.Token)
	if err != nil {
		return nil, "", fmt.Errorf("store: list backends: %w", err)
	}
	limit := pageLimit(p)
	rows, err := s.pool.Query(ctx, `SELECT `+backendColumns+` FROM backends
		WHERE name > $1 ORDER BY name LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: list backends: %w", err)
	}
	bs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.Backend, error) { return scanBackend(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list backends: %w", err)
	}
	next := ""
	if len(bs) > limit {
		bs = bs[:limit]
		next = nameToken(bs[limit-1].Name)
	}
	if err := fillBackends(ctx, s.pool, bs); err != nil {
		return nil, "", fmt.Errorf("store: list backends: %w", err)
	}
	return bs, next, nil
}

// DeleteBackend deletes a backend that no group uses and that is no other
// backend's replication target.
func (s *Store) DeleteBackend(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM backends WHERE name = $1 FOR UPDATE`, name).Scan(&exists); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ferry.Errorf(ferry.ENotFound, "backend %q not found", name)
			}
			return err
		}
		backends, err := names(ctx, tx, `
			SELECT DISTINCT backend FROM backend_replication_targets
			WHERE target_backend = $1 AND backend <> $1 ORDER BY backend LIMIT 6`, name)
		if err != nil {
			return err
		}
		groups, err := names(ctx, tx, `
			SELECT group_name FROM group_backends WHERE backend = $1 ORDER BY group_name LIMIT 6`, name)
		if err != nil {
			return err
		}
		if len(backends)+len(groups) > 0 {
			return ferry.Errorf(ferry.EConflict, "backend %q is used by %s", name, users(backends, groups))
		}
		_, err = tx.Exec(ctx, `DELETE FROM backends WHERE name = $1`, name)
		return mapDeleteErr(err)
	})
	if err != nil {
		return fmt.Errorf("store: delete backend %q: %w", name, err)
	}
	return nil
}

// SetBackendState records a backend's observed replication state; the
// active_backend_id is set on the backend and on every member.
func (s *Store) SetBackendState(ctx context.Context, name, replicationStatus, activeBackendID string, frozen bool) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE backends SET replication_status = $2, active_backend_id = $3, frozen = $4, updated = now()
			WHERE name = $1`, name, replicationStatus, activeBackendID, frozen)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ferry.Errorf(ferry.ENotFound, "backend %q not found", name)
		}
		_, err = tx.Exec(ctx, `UPDATE backend_members SET active_backend_id = $2 WHERE backend = $1`, name, activeBackendID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set backend %q state: %w", name, err)
	}
	return nil
}

// BackendMembers returns the members of a backend, in their declared order,
// with the active_backend_id each one last reported.
func (s *Store) BackendMembers(ctx context.Context, backend string) ([]Member, error) {
	var ms []Member
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := lockBackend(ctx, tx, backend)
		if err != nil {
			return err
		}
		if !ok {
			return ferry.Errorf(ferry.ENotFound, "backend %q not found", backend)
		}
		rows, err := tx.Query(ctx, `
			SELECT member, active_backend_id FROM backend_members
			WHERE backend = $1 ORDER BY position`, backend)
		if err != nil {
			return err
		}
		ms, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Member])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: backend %q members: %w", backend, err)
	}
	return ms, nil
}

// SetMemberActiveBackendID records the active_backend_id one member of a
// backend reported (after a failover_completed that reached only some).
func (s *Store) SetMemberActiveBackendID(ctx context.Context, backend, member, activeBackendID string) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE backend_members SET active_backend_id = $3 WHERE backend = $1 AND member = $2`,
		backend, member, activeBackendID)
	if err != nil {
		return fmt.Errorf("store: set member %q of backend %q: %w", member, backend, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: set member %q of backend %q: %w", member, backend,
			ferry.Errorf(ferry.ENotFound, "member %q of backend %q not found", member, backend))
	}
	return nil
}
