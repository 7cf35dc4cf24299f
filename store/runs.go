package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
)

// FinalRunStates are the run states ferry.RunEnded reports as final.
var FinalRunStates = []string{ferry.RunCompleted, ferry.RunRolledBack, ferry.RunFailed, ferry.RunAborted}

// activeRunSQL selects runs whose state is not final. It is a literal (not a
// parameter) so that the planner can use the partial index runs_active_idx.
var activeRunSQL = func() string {
	q := make([]string, len(FinalRunStates))
	for i, s := range FinalRunStates {
		q[i] = "'" + s + "'"
	}
	return "state NOT IN (" + strings.Join(q, ", ") + ")"
}()

const runColumns = `id, workflow_id, kind, group_name, site, backend, mode, state, requested_by,
	created, ended, rpo_seconds, rto_seconds, writes_lost, steps, approvals, events, flags, message, details,
	started_by, project`

// runValues are the values of runColumns for an insert. A run's project is
// its group's when the writer does not say (workflows and activities write
// records without knowing projects).
const runValues = `$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
	$21, COALESCE(NULLIF($22, ''), (SELECT project FROM protection_groups WHERE name = $4), '')`

// runArgs returns r's column values in runColumns order. Times are stored in
// UTC; a zero Created means now.
func runArgs(r ferry.Run) ([]any, error) {
	if r.ID == "" {
		return nil, ferry.Invalid("id", "is required")
	}
	created := r.Created
	if created.IsZero() {
		created = time.Now()
	}
	var ended *time.Time
	if r.Ended != nil {
		t := r.Ended.UTC()
		ended = &t
	}
	steps := make([]ferry.Step, len(r.Steps))
	for i, s := range r.Steps {
		if s.Started != nil {
			t := s.Started.UTC()
			s.Started = &t
		}
		if s.Ended != nil {
			t := s.Ended.UTC()
			s.Ended = &t
		}
		steps[i] = s
	}
	approvals := make([]ferry.Approval, len(r.Approvals))
	for i, a := range r.Approvals {
		a.At = a.At.UTC()
		approvals[i] = a
	}
	events := make([]ferry.Event, len(r.Events))
	for i, e := range r.Events {
		e.At = e.At.UTC()
		events[i] = e
	}
	stepsJSON, err := jsonOrNull(r.Steps == nil, steps)
	if err != nil {
		return nil, err
	}
	approvalsJSON, err := jsonOrNull(r.Approvals == nil, approvals)
	if err != nil {
		return nil, err
	}
	eventsJSON, err := jsonOrNull(r.Events == nil, events)
	if err != nil {
		return nil, err
	}
	detailsJSON, err := json.Marshal(r.RunDetails)
	if err != nil {
		return nil, err
	}
	return []any{r.ID, r.WorkflowID, r.Kind, r.Group, r.Site, r.Backend, r.Mode, r.State, r.RequestedBy,
		created.UTC(), ended, r.RPOSeconds, r.RTOSeconds, r.WritesLost, stepsJSON, approvalsJSON, eventsJSON,
		r.Flags, r.Message, detailsJSON, r.StartedBy, r.Project}, nil
}

// jsonOrNull encodes v, or returns nil (SQL NULL) when null is set, so that a
// nil slice reads back as nil and an empty one as empty.
func jsonOrNull(null bool, v any) ([]byte, error) {
	if null {
		return nil, nil
	}
	return json.Marshal(v)
}

func scanRun(row pgx.Row) (ferry.Run, error) {
	var r ferry.Run
	var steps, approvals, events, details []byte
	err := row.Scan(&r.ID, &r.WorkflowID, &r.Kind, &r.Group, &r.Site, &r.Backend, &r.Mode, &r.State, &r.RequestedBy,
		&r.Created, &r.Ended, &r.RPOSeconds, &r.RTOSeconds, &r.WritesLost, &steps, &approvals, &events,
		&r.Flags, &r.Message, &details, &r.StartedBy, &r.Project)
	if err != nil {
		return ferry.Run{}, err
	}
	r.Created = r.Created.UTC()
	if r.Ended != nil {
		t := r.Ended.UTC()
		r.Ended = &t
	}
	for _, f := range []struct {
		b []byte
		v any
	}{{steps, &r.Steps}, {approvals, &r.Approvals}, {events, &r.Events}, {details, &r.RunDetails}} {
		if f.b == nil {
			continue
		}
		if err := json.Unmarshal(f.b, f.v); err != nil {
			return ferry.Run{}, fmt.Errorf("decode run %q: %w", r.ID, err)
		}
	}
	return r, nil
}

// CreateRun inserts a run record unless one with its id exists.
func (s *Store) CreateRun(ctx context.Context, r ferry.Run) error {
	args, err := runArgs(r)
	if err == nil {
		_, err = s.pool.Exec(ctx, `INSERT INTO runs (`+runColumns+`)
			VALUES (`+runValues+`)
			ON CONFLICT (id) DO NOTHING`, args...)
	}
	if err != nil {
		return fmt.Errorf("store: create run %q: %w", r.ID, err)
	}
	return nil
}

// FinishRun writes the complete record of a run, inserting or replacing
// every column but two that the API set at start and a workflow does not
// know: started_by (kept unless r sets it) and project (kept once set).
func (s *Store) FinishRun(ctx context.Context, r ferry.Run) error {
	args, err := runArgs(r)
	if err == nil {
		_, err = s.pool.Exec(ctx, `INSERT INTO runs (`+runColumns+`)
			VALUES (`+runValues+`)
			ON CONFLICT (id) DO UPDATE SET
			workflow_id = EXCLUDED.workflow_id, kind = EXCLUDED.kind, group_name = EXCLUDED.group_name,
			site = EXCLUDED.site, backend = EXCLUDED.backend, mode = EXCLUDED.mode, state = EXCLUDED.state,
			requested_by = EXCLUDED.requested_by, created = EXCLUDED.created, ended = EXCLUDED.ended,
			rpo_seconds = EXCLUDED.rpo_seconds, rto_seconds = EXCLUDED.rto_seconds,
			writes_lost = EXCLUDED.writes_lost, steps = EXCLUDED.steps, approvals = EXCLUDED.approvals,
			events = EXCLUDED.events, flags = EXCLUDED.flags, message = EXCLUDED.message,
			details = EXCLUDED.details,
			started_by = CASE WHEN EXCLUDED.started_by <> '' THEN EXCLUDED.started_by ELSE runs.started_by END,
			project = CASE WHEN runs.project <> '' THEN runs.project ELSE EXCLUDED.project END`, args...)
	}
	if err != nil {
		return fmt.Errorf("store: finish run %q: %w", r.ID, err)
	}
	return nil
}

// GetRun returns the run record with the given id.
func (s *Store) GetRun(ctx context.Context, id string) (ferry.Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ferry.Run{}, fmt.Errorf("store: get run: %w", ferry.Errorf(ferry.ENotFound, "run %q not found", id))
	}
	if err != nil {
		return ferry.Run{}, fmt.Errorf("store: get run %q: %w", id, err)
	}
	return r, nil
}

// ListRuns returns a page of runs, newest first, matching f.
func (s *Store) ListRuns(ctx context.Context, f ferry.RunFilter) ([]ferry.Run, string, error) {
	created, id, ok, err := afterRun(f.Token)
	if err != nil {
		return nil, "", fmt.Errorf("store: list runs: %w", err)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	for _, c := range []struct{ col, v string }{
		{"group_name", f.Group}, {"site", f.Site}, {"kind", f.Kind}, {"state", f.State}, {"project", f.Project},
	} {
		if c.v != "" {
			where = append(where, c.col+" = "+arg(c.v))
		}
	}
	if ok {
		where = append(where, "(created, id) < ("+arg(created)+", "+arg(id)+")")
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := pageLimit(f.Page)
	q += " ORDER BY created DESC, id DESC LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.Run, error) { return scanRun(r) })
	if err != nil {
		return nil, "", fmt.Errorf("store: list runs: %w", err)
	}
	next := ""
	if len(runs) > limit {
		runs = runs[:limit]
		last := runs[limit-1]
		next = runToken(last.Created, last.ID)
	}
	return runs, next, nil
}

// ActiveRuns lists the runs of a group whose recorded state is not final,
// newest first.
func (s *Store) ActiveRuns(ctx context.Context, group string) ([]ferry.Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs
		WHERE group_name = $1 AND `+activeRunSQL+` ORDER BY created DESC, id DESC`, group)
	if err != nil {
		return nil, fmt.Errorf("store: active runs of group %q: %w", group, err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ferry.Run, error) { return scanRun(r) })
	if err != nil {
		return nil, fmt.Errorf("store: active runs of group %q: %w", group, err)
	}
	return runs, nil
}
