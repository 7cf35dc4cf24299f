package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydr/ferry"
)

// The reads below feed the API's Prometheus collector (package metrics):
// each is one query over a whole table, grouped in PostgreSQL, so a reading
// sends a handful of rows whatever the tables hold; the counts scan the
// runs and replication events tables, which is why the collector keeps a
// reading for a while (metrics.StateOptions.TTL, 10 s) rather than querying at
// every scrape.

// RunCount is how many run records of a kind are in a recorded state.
type RunCount struct {
	Kind  string
	State string
	Count int64
}

// CountRuns counts the run records by kind and recorded state. A run in
// progress is recorded as running until it ends: its live state (paused,
// waiting for approval) is the workflow's, not the store's.
func (s *Store) CountRuns(ctx context.Context) ([]RunCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, state, count(*) FROM runs GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		return nil, fmt.Errorf("store: count runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunCount, error) {
		var c RunCount
		return c, r.Scan(&c.Kind, &c.State, &c.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("store: count runs: %w", err)
	}
	return out, nil
}

// UnfinishedRuns lists up to limit runs of every group whose recorded
// state is not final, newest first.
func (s *Store) UnfinishedRuns(ctx context.Context, limit int) ([]ferry.Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE `+activeRunSQL+`
		ORDER BY created DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: unfinished runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.Run, error) { return scanRun(r) })
	if err != nil {
		return nil, fmt.Errorf("store: unfinished runs: %w", err)
	}
	return runs, nil
}

// ReplicaLag is a recorded replica that is not the active one, with its
// group's RPO.
type ReplicaLag struct {
	Group      string
	Resource   string
	Kind       string
	Site       string
	Backend    string
	State      string
	LagSeconds float64
	RPOSeconds int
	Observed   time.Time
}

// ReplicaLags lists every recorded replica that is not active (the ones
// whose lag an RPO judges), with its group's RPO, by group, resource and
// site.
func (s *Store) ReplicaLags(ctx context.Context) ([]ReplicaLag, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT r.group_name, r.resource, r.kind, r.site, r.backend, r.state, r.lag_seconds,
		       COALESCE((g.spec->>'rpo_seconds')::integer, 0), r.observed
		FROM replicas r JOIN protection_groups g ON g.name = r.group_name
		WHERE r.state <> $1
		ORDER BY r.group_name, r.resource, r.site`, ferry.ReplicaActive)
	if err != nil {
		return nil, fmt.Errorf("store: replica lags: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReplicaLag, error) {
		var l ReplicaLag
		err := row.Scan(&l.Group, &l.Resource, &l.Kind, &l.Site, &l.Backend, &l.State, &l.LagSeconds, &l.RPOSeconds, &l.Observed)
		l.Observed = l.Observed.UTC()
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: replica lags: %w", err)
	}
	return out, nil
}

// GroupObserved is when a group's replicas were last recorded.
type GroupObserved struct {
	Group      string
	RPOSeconds int
	Observed   time.Time
}

// GroupsObserved lists, for every group with recorded replicas, when the
// newest of them was recorded: a monitor that stops reporting leaves it
// behind.
func (s *Store) GroupsObserved(ctx context.Context) ([]GroupObserved, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT r.group_name, COALESCE((g.spec->>'rpo_seconds')::integer, 0), max(r.observed)
		FROM replicas r JOIN protection_groups g ON g.name = r.group_name
		GROUP BY r.group_name, g.spec->>'rpo_seconds' ORDER BY r.group_name`)
	if err != nil {
		return nil, fmt.Errorf("store: groups observed: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (GroupObserved, error) {
		var g GroupObserved
		err := row.Scan(&g.Group, &g.RPOSeconds, &g.Observed)
		g.Observed = g.Observed.UTC()
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: groups observed: %w", err)
	}
	return out, nil
}

// EventCount is how many replication events of a severity a group has.
type EventCount struct {
	Group    string
	Severity string
	Count    int64
}

// CountEvents counts the stored replication events by group and severity.
// Events are never deleted but with their group, so each count only grows
// while its group exists.
func (s *Store) CountEvents(ctx context.Context) ([]EventCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT group_name, severity, count(*) FROM replication_events
		GROUP BY group_name, severity ORDER BY group_name, severity`)
	if err != nil {
		return nil, fmt.Errorf("store: count events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventCount, error) {
		var c EventCount
		return c, r.Scan(&c.Group, &c.Severity, &c.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("store: count events: %w", err)
	}
	return out, nil
}
