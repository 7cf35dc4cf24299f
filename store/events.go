package store

import (
	"context"
	"fmt"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
)

var _ ferry.EventStore = (*Store)(nil)

// Event list limits.
const (
	DefaultEventLimit = 50
	MaxEventLimit     = 1000
)

// AddEvents stores replication events in one transaction. An event whose ID
// is stored already is kept as it was (a retried write changes nothing), and
// an event of a group that no longer exists is dropped: the monitor may
// observe a group just before it is deleted.
func (s *Store) AddEvents(ctx context.Context, events []ferry.ReplicationEvent) error {
	for i, e := range events {
		field := fmt.Sprintf("events[%d]", i)
		switch {
		case e.ID == "":
			return ferry.Invalid(field+".id", "is required")
		case e.Group == "":
			return ferry.Invalid(field+".group", "is required")
		case e.Resource == "":
			return ferry.Invalid(field+".resource", "is required")
		case e.At.IsZero():
			return ferry.Invalid(field+".at", "is required")
		}
		switch e.Severity {
		case ferry.SeverityWarning, ferry.SeverityCritical, ferry.SeverityResolved:
		default:
			return ferry.Invalid(field+".severity", "must be %s, %s or %s, not %q",
				ferry.SeverityWarning, ferry.SeverityCritical, ferry.SeverityResolved, e.Severity)
		}
	}
	if len(events) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, e := range events {
			batch.Queue(`
				INSERT INTO replication_events
				    (id, group_name, resource, site, backend, severity, lag_seconds, rpo_seconds, message, at)
				SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
				WHERE EXISTS (SELECT 1 FROM protection_groups WHERE name = $2 FOR KEY SHARE)
				ON CONFLICT (id) DO NOTHING`,
				e.ID, e.Group, e.Resource, e.Site, e.Backend, e.Severity, e.LagSeconds, e.RPOSeconds, e.Message, e.At.UTC())
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return fmt.Errorf("store: add events: %w", err)
	}
	return nil
}

// ListEvents returns the newest events of group, or of every group when
// group is "", newest first. A group that does not exist is ENotFound.
func (s *Store) ListEvents(ctx context.Context, group string, limit int) ([]ferry.ReplicationEvent, error) {
	switch {
	case limit <= 0:
		limit = DefaultEventLimit
	case limit > MaxEventLimit:
		limit = MaxEventLimit
	}
	var out []ferry.ReplicationEvent
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if group != "" {
			ok, err := lockRow(ctx, tx, `SELECT true FROM protection_groups WHERE name = $1`, group)
			if err != nil {
				return err
			}
			if !ok {
				return ferry.Errorf(ferry.ENotFound, "group %q not found", group)
			}
		}
		rows, err := tx.Query(ctx, `
			SELECT id, group_name, resource, site, backend, severity, lag_seconds, rpo_seconds, message, at
			FROM replication_events
			WHERE $1 = '' OR group_name = $1
			ORDER BY at DESC, id DESC
			LIMIT $2`, group, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ferry.ReplicationEvent, error) {
			var e ferry.ReplicationEvent
			err := row.Scan(&e.ID, &e.Group, &e.Resource, &e.Site, &e.Backend, &e.Severity,
				&e.LagSeconds, &e.RPOSeconds, &e.Message, &e.At)
			e.At = e.At.UTC()
			return e, err
		})
		return err
	})
	if out == nil {
		out = []ferry.ReplicationEvent{}
	}
	if err != nil {
		return nil, fmt.Errorf("store: list events of group %q: %w", group, err)
	}
	return out, nil
}
