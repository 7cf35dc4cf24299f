package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// DrillSchedule is the body of PUT /v1/groups/{name}/drill-schedule. Nil
// HoldSeconds and Paused keep the schedule's current values.
type DrillSchedule struct {
	Cron        string `json:"cron"`
	HoldSeconds *int   `json:"hold_seconds,omitempty"`
	Paused      *bool  `json:"paused,omitempty"`
}

// Schedule is one group's drill schedule, as GET /v1/schedules answers it.
type Schedule struct {
	Group          string         `json:"group"`
	Cron           string         `json:"cron"`
	ScheduleID     string         `json:"schedule_id"`
	HoldSeconds    int            `json:"hold_seconds"`
	Paused         bool           `json:"paused"`
	NextRuns       []time.Time    `json:"next_runs"`
	RecentRuns     []ScheduledRun `json:"recent_runs"`
	SkippedOverlap int            `json:"skipped_overlap"`
	Problem        string         `json:"problem,omitempty"`
}

// ScheduledRun is one drill a schedule started.
type ScheduledRun struct {
	ScheduledAt time.Time `json:"scheduled_at"`
	StartedAt   time.Time `json:"started_at"`
	WorkflowID  string    `json:"workflow_id,omitempty"`
	RunID       string    `json:"run_id,omitempty"`
	State       string    `json:"state,omitempty"`
}

// PutDrillSchedule creates or updates a group's drill schedule and reports
// whether it created it.
func (c *Client) PutDrillSchedule(ctx context.Context, group string, s DrillSchedule) (Schedule, bool, error) {
	var out Schedule
	var status int
	err := c.send(ctx, http.MethodPut, "/v1/groups/"+url.PathEscape(group)+"/drill-schedule", s, &out, nil, &status)
	return out, status == http.StatusCreated, err
}

// DeleteDrillSchedule removes a group's drill schedule.
func (c *Client) DeleteDrillSchedule(ctx context.Context, group string) error {
	return c.do(ctx, http.MethodDelete, "/v1/groups/"+url.PathEscape(group)+"/drill-schedule", nil, nil, nil)
}

// ListSchedules returns every group's drill schedule.
func (c *Client) ListSchedules(ctx context.Context) (Page[Schedule], error) {
	return get[Page[Schedule]](ctx, c, "/v1/schedules")
}
