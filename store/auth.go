package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydr/ferry"
)

var _ ferry.AuthStore = (*Store)(nil)

const tokenColumns = `id, name, role, project, created_by, created_at, expires_at, revoked_at, last_used_at`

// touchEvery is how stale last_used_at may get before a use rewrites it.
const touchEvery = time.Minute

// bootstrapLock is the advisory lock that makes concurrent bootstraps
// create one admin token.
const bootstrapLock = 0x66657272792d6274 // "ferry-bt"

func scanToken(row pgx.Row) (ferry.Token, error) {
	var t ferry.Token
	err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Project, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt, &t.LastUsedAt)
	if err != nil {
		return ferry.Token{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	for _, p := range []**time.Time{&t.ExpiresAt, &t.RevokedAt, &t.LastUsedAt} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return t, nil
}

// CreateToken stores a new token under the hash of its secret.
func (s *Store) CreateToken(ctx context.Context, t ferry.Token, hash []byte) error {
	if err := insertToken(ctx, s.pool, t, hash); err != nil {
		return fmt.Errorf("store: create token %q: %w", t.Name, err)
	}
	return nil
}

func insertToken(ctx context.Context, q querier, t ferry.Token, hash []byte) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.ID == "" || len(hash) != 32 {
		return ferry.Errorf(ferry.EInvalid, "a token needs an id and a 32-byte hash (use ferry.NewToken)")
	}
	_, err := q.Exec(ctx, `INSERT INTO auth_tokens (id, hash, name, role, project, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, hash, t.Name, t.Role, t.Project, t.CreatedBy, t.CreatedAt, t.ExpiresAt)
	if hasCode(err, "23505") { // unique_violation: the active name (the hash and id are random)
		return &ferry.Error{Code: ferry.EConflict, Field: "name",
			Message: fmt.Sprintf("an unrevoked token is already named %q; revoke it or choose another name", t.Name)}
	}
	return err
}

// BootstrapToken creates an admin token unless an active one exists.
func (s *Store) BootstrapToken(ctx context.Context, t ferry.Token, hash []byte, force bool) error {
	if t.Role != ferry.RoleAdmin {
		return ferry.Invalid("role", "a bootstrap token is an admin token, not %q", t.Role)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(bootstrapLock)); err != nil {
			return err
		}
		if !force {
			var id, name string
			err := tx.QueryRow(ctx, `SELECT id, name FROM auth_tokens
				WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
				ORDER BY created_at LIMIT 1`).Scan(&id, &name)
			if err == nil {
				return ferry.Errorf(ferry.EConflict, "an active admin token exists (%s, %q): create more with `ferry token create`, or bootstrap with --force", id, name)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		return insertToken(ctx, tx, t, hash)
	})
	if err != nil {
		return fmt.Errorf("store: bootstrap token: %w", err)
	}
	return nil
}

// TokenByHash returns the token whose secret hashes to hash.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (ferry.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM auth_tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return ferry.Token{}, ferry.Errorf(ferry.ENotFound, "no such token")
	}
	if err != nil {
		return ferry.Token{}, fmt.Errorf("store: look up token: %w", err)
	}
	return t, nil
}

// GetToken returns the token with the given id.
func (s *Store) GetToken(ctx context.Context, id string) (ferry.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM auth_tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ferry.Token{}, fmt.Errorf("store: get token: %w", ferry.Errorf(ferry.ENotFound, "token %q not found", id))
	}
	if err != nil {
		return ferry.Token{}, fmt.Errorf("store: get token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens lists tokens, newest first.
func (s *Store) ListTokens(ctx context.Context, p ferry.Page) ([]ferry.Token, string, error) {
	created, id, ok, err := afterRun(p.Token)
	if err != nil {
		return nil, "", fmt.Errorf("store: list tokens: %w", err)
	}
	limit := pageLimit(p)
	q := `SELECT ` + tokenColumns + ` FROM auth_tokens`
	args := []any{limit + 1}
	if ok {
		q += ` WHERE (created_at, id) < ($2, $3)`
		args = append(args, created, id)
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY created_at DESC, id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list tokens: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list tokens: %w", err)
	}
	next := ""
	if len(ts) > limit {
		ts = ts[:limit]
		next = runToken(ts[limit-1].CreatedAt, ts[limit-1].ID)
	}
	return ts, next, nil
}

// RevokeToken marks a token revoked.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) (ferry.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `UPDATE auth_tokens SET revoked_at = COALESCE(revoked_at, $2)
		WHERE id = $1 RETURNING `+tokenColumns, id, at.UTC()))
	if errors.Is(err, pgx.ErrNoRows) {
		return ferry.Token{}, fmt.Errorf("store: revoke token: %w", ferry.Errorf(ferry.ENotFound, "token %q not found", id))
	}
	if err != nil {
		return ferry.Token{}, fmt.Errorf("store: revoke token %q: %w", id, err)
	}
	return t, nil
}

// TouchToken records a use of the token, writing at most once a minute.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE auth_tokens SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)`, id, at.UTC(), at.UTC().Add(-touchEvery))
	if err != nil {
		return fmt.Errorf("store: touch token %q: %w", id, err)
	}
	return nil
}

const auditColumns = `id, at, method, path, status, token_id, token_name, role, project, run_id, remote_addr, request_id`

// AppendAudit appends an entry; a zero At means now.
func (s *Store) AppendAudit(ctx context.Context, e ferry.AuditEntry) (int64, error) {
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO audit_log
		(at, method, path, status, token_id, token_name, role, project, run_id, remote_addr, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		at.UTC(), e.Method, e.Path, e.Status, e.TokenID, e.TokenName, e.Role, e.Project, e.RunID, e.RemoteAddr, e.RequestID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: append audit entry: %w", err)
	}
	return id, nil
}

// CompleteAudit records the outcome of an appended entry.
func (s *Store) CompleteAudit(ctx context.Context, id int64, status int, runID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE audit_log SET status = $2, run_id = CASE WHEN $3 <> '' THEN $3 ELSE run_id END
		WHERE id = $1`, id, status, runID)
	if err != nil {
		return fmt.Errorf("store: complete audit entry %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: complete audit entry: %w", ferry.Errorf(ferry.ENotFound, "audit entry %d not found", id))
	}
	return nil
}

const auditTokenPrefix = "a1:"

// ListAudit lists entries, newest first.
func (s *Store) ListAudit(ctx context.Context, f ferry.AuditFilter) ([]ferry.AuditEntry, string, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Token != "" {
		a := arg(f.Token)
		where = append(where, "(token_id = "+a+" OR token_name = "+a+")")
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since.UTC()))
	}
	if f.Page.Token != "" {
		v, err := decodeToken(f.Page.Token, auditTokenPrefix)
		if err != nil {
			return nil, "", fmt.Errorf("store: list audit: %w", err)
		}
		before, err := strconv.ParseInt(v, 10, 64)
		if err != nil || before <= 0 {
			return nil, "", fmt.Errorf("store: list audit: %w", badToken())
		}
		where = append(where, "id < "+arg(before))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := pageLimit(f.Page)
	// Ordered by id, the order of appending: a clock step cannot reorder
	// the log or make a page skip an entry.
	q += " ORDER BY id DESC LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.AuditEntry, error) {
		var e ferry.AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Method, &e.Path, &e.Status, &e.TokenID, &e.TokenName, &e.Role,
			&e.Project, &e.RunID, &e.RemoteAddr, &e.RequestID)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: list audit: %w", err)
	}
	next := ""
	if len(es) > limit {
		es = es[:limit]
		next = encodeToken(auditTokenPrefix + strconv.FormatInt(es[limit-1].ID, 10))
	}
	return es, next, nil
}
