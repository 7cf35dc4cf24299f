package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// A group's drill schedule is a Temporal Schedule that starts drill runs.
// The cron lives in the group (drill_schedule) so the inventory says what
// is scheduled; the hold and the paused state live in the schedule.
// Overlapping drills of one group are skipped, never stacked.

// drillCatchup bounds how late a missed drill may still start after an
// outage of Temporal: a drill a day late is no longer the one asked for.
const drillCatchup = time.Hour

// drillScheduleRequest is the body of PUT /v1/groups/{name}/drill-schedule.
// Absent hold_seconds and paused keep the schedule's current values.
type drillScheduleRequest struct {
	Cron        string `json:"cron"`
	HoldSeconds *int   `json:"hold_seconds"`
	Paused      *bool  `json:"paused"`
}

// scheduleItem is one group's drill schedule as GET /v1/schedules shows it.
type scheduleItem struct {
	Group       string         `json:"group"`
	Cron        string         `json:"cron"`
	ScheduleID  string         `json:"schedule_id"`
	HoldSeconds int            `json:"hold_seconds"`
	Paused      bool           `json:"paused"`
	NextRuns    []time.Time    `json:"next_runs"`
	RecentRuns  []scheduledRun `json:"recent_runs"`
	// SkippedOverlap counts drills skipped because one was still running.
	SkippedOverlap int `json:"skipped_overlap"`
	// Problem says why the schedule cannot be shown (e.g. missing in
	// Temporal).
	Problem string `json:"problem,omitempty"`
}

// scheduledRun is one drill a schedule started.
type scheduledRun struct {
	ScheduledAt time.Time `json:"scheduled_at"`
	StartedAt   time.Time `json:"started_at"`
	WorkflowID  string    `json:"workflow_id,omitempty"`
	RunID       string    `json:"run_id,omitempty"`
	State       string    `json:"state,omitempty"`
}

// scheduleSettings is what a drill schedule is made of; nil pointers keep
// what the schedule holds (or the defaults for a new one).
type scheduleSettings struct {
	cron   string
	hold   *int
	paused *bool
}

func (s *server) putDrillSchedule(w http.ResponseWriter, r *http.Request) {
	var req drillScheduleRequest
	if err := decode(w, r, &req, false); err != nil {
		s.error(w, r, err)
		return
	}
	ctx := r.Context()
	g, err := s.Store.GetGroup(ctx, chi.URLParam(r, "name"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := validCron(g, req.Cron); err != nil {
		s.error(w, r, err)
		return
	}
	if req.HoldSeconds != nil {
		if err := checkHold(*req.HoldSeconds, "hold_seconds"); err != nil {
			s.error(w, r, err)
			return
		}
	}
	tc, err := s.temporal()
	if err != nil {
		s.error(w, r, err)
		return
	}
	created, err := s.upsertDrillSchedule(ctx, tc, g, scheduleSettings{cron: req.Cron, hold: req.HoldSeconds, paused: req.Paused})
	if err != nil {
		s.error(w, r, err)
		return
	}
	prev := g.DrillSchedule
	g.DrillSchedule = req.Cron
	if _, err := s.Store.PutGroup(ctx, g); err != nil {
		s.undoSchedule(ctx, tc, g.Name, created, prev)
		s.error(w, r, err)
		return
	}
	item := s.describeSchedule(ctx, tc, g)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, item)
}

func (s *server) deleteDrillSchedule(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	g, err := s.Store.GetGroup(ctx, chi.URLParam(r, "name"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	tc, err := s.temporal()
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := deleteSchedule(ctx, tc, g.Name); err != nil {
		s.error(w, r, err)
		return
	}
	if g.DrillSchedule != "" {
		g.DrillSchedule = ""
		if _, err := s.Store.PutGroup(ctx, g); err != nil {
			s.error(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// listSchedules answers every group's drill schedule with its next and
// recent runs, as Temporal knows them.
func (s *server) listSchedules(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tc, err := s.temporal()
	if err != nil {
		s.error(w, r, err)
		return
	}
	items := []scheduleItem{}
	p := ferry.Page{Limit: maxLimit}
	for {
		groups, next, err := s.Store.ListGroups(ctx, p)
		if err != nil {
			s.error(w, r, err)
			return
		}
		for _, g := range groups {
			if g.DrillSchedule != "" {
				items = append(items, s.describeSchedule(ctx, tc, g))
			}
		}
		if next == "" {
			break
		}
		p.Token = next
	}
	writeJSON(w, http.StatusOK, list[scheduleItem]{Items: items})
}

// validCron checks a drill schedule's cron the way a group's drill_schedule
// is checked, naming the field "cron".
func validCron(g ferry.Group, cron string) error {
	if cron == "" {
		return ferry.Invalid("cron", "is required (a 5-field cron expression, e.g. \"0 3 * * 1\")")
	}
	g.DrillSchedule = cron
	var fe *ferry.Error
	if err := g.Validate(); errors.As(err, &fe) && fe.Field == "drill_schedule" {
		return ferry.Invalid("cron", "%s", fe.Message)
	}
	return nil
}

// upsertDrillSchedule creates the group's schedule or updates it in place,
// and reports whether it created it. Temporal's own parse of the cron is
// the last word: a cron it refuses is a 422 on "cron".
func (s *server) upsertDrillSchedule(ctx context.Context, tc client.Client, g ferry.Group, set scheduleSettings) (bool, error) {
	hold, paused := 0, false
	if set.hold != nil {
		hold = *set.hold
	}
	if set.paused != nil {
		paused = *set.paused
	}
	id := workflows.DrillScheduleID(g.Name)
	action := &client.ScheduleWorkflowAction{
		ID:       workflows.DrillScheduledWorkflowID(g.Name),
		Workflow: workflows.DrillWorkflowName,
		Args: []any{workflows.DrillInput{
			Group: g.Name, RequestedBy: "schedule", HoldSeconds: hold, Scheduled: true,
		}},
		TaskQueue:             s.TaskQueue,
		TypedSearchAttributes: searchAttributes(ferry.Run{Kind: ferry.KindDrill, Group: g.Name, Site: drillSite(g)}),
	}
	spec := client.ScheduleSpec{CronExpressions: []string{set.cron}}
	_, err := tc.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            id,
		Spec:          spec,
		Action:        action,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: drillCatchup,
		Paused:        paused,
		Note:          "drills of group " + g.Name + " (managed by Ferry)",
	})
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, scheduleError(err)
	}
	h := tc.ScheduleClient().GetHandle(ctx, id)
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		sch := in.Description.Schedule
		if set.hold == nil {
			if cur, ok := scheduledInput(s.dataConverter, sch.Action); ok {
				action.Args = []any{workflows.DrillInput{Group: g.Name, RequestedBy: "schedule", HoldSeconds: cur.HoldSeconds, Scheduled: true}}
			}
		}
		sch.Action = action
		sch.Spec = &spec
		if sch.Policy == nil {
			sch.Policy = &client.SchedulePolicies{}
		}
		sch.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
		sch.Policy.CatchupWindow = drillCatchup
		if sch.State == nil {
			sch.State = &client.ScheduleState{}
		}
		if set.paused != nil {
			sch.State.Paused = *set.paused
		}
		return &client.ScheduleUpdate{Schedule: &sch}, nil
	}})
	return false, scheduleError(err)
}

// scheduleError maps Temporal's refusal of a schedule (a cron it cannot
// parse) to a 422 on "cron".
func scheduleError(err error) error {
	if err == nil {
		return nil
	}
	var bad *serviceerror.InvalidArgument
	if errors.As(err, &bad) {
		return ferry.Invalid("cron", "Temporal refused the schedule: %s", bad.Message)
	}
	return fmt.Errorf("drill schedule: %w", err)
}

func deleteSchedule(ctx context.Context, tc client.Client, group string) error {
	err := tc.ScheduleClient().GetHandle(ctx, workflows.DrillScheduleID(group)).Delete(ctx)
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete drill schedule of %s: %w", group, err)
	}
	return nil
}

// undoSchedule puts a schedule back after the store refused the group:
// a schedule created for it goes, one updated gets its old cron back.
func (s *server) undoSchedule(ctx context.Context, tc client.Client, group string, created bool, prevCron string) {
	var err error
	switch {
	case created:
		err = deleteSchedule(ctx, tc, group)
	case prevCron != "":
		_, err = s.upsertDrillSchedule(ctx, tc, ferry.Group{Name: group}, scheduleSettings{cron: prevCron})
	}
	if err != nil {
		s.Logger.ErrorContext(ctx, "drill schedule not put back after a failed store write",
			slog.String("group", group), slog.Any("error", err))
	}
}

// scheduledInput reads the drill input a schedule's action holds. Temporal
// hands it back as it stored it, so dc must be the converter that wrote it
// (sealed when payloads are encrypted).
func scheduledInput(dc converter.DataConverter, a client.ScheduleAction) (workflows.DrillInput, bool) {
	var in workflows.DrillInput
	wa, ok := a.(*client.ScheduleWorkflowAction)
	if !ok || len(wa.Args) == 0 {
		return in, false
	}
	switch arg := wa.Args[0].(type) {
	case *commonpb.Payload:
		return in, dc.FromPayload(arg, &in) == nil
	case workflows.DrillInput:
		return arg, true
	}
	return in, false
}

// describeSchedule answers a group's schedule as Temporal sees it; what
// cannot be read is said in the item rather than failing the whole list.
func (s *server) describeSchedule(ctx context.Context, tc client.Client, g ferry.Group) scheduleItem {
	item := scheduleItem{
		Group: g.Name, Cron: g.DrillSchedule, ScheduleID: workflows.DrillScheduleID(g.Name),
		NextRuns: []time.Time{}, RecentRuns: []scheduledRun{},
	}
	d, err := tc.ScheduleClient().GetHandle(ctx, item.ScheduleID).Describe(ctx)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		item.Problem = "no Temporal schedule exists for this group: PUT its drill schedule again"
		return item
	case err != nil:
		item.Problem = "temporal: " + err.Error()
		return item
	}
	if in, ok := scheduledInput(s.dataConverter, d.Schedule.Action); ok {
		item.HoldSeconds = in.HoldSeconds
	}
	if d.Schedule.State != nil {
		item.Paused = d.Schedule.State.Paused
	}
	item.SkippedOverlap = d.Info.NumActionsSkippedOverlap
	for _, t := range d.Info.NextActionTimes {
		item.NextRuns = append(item.NextRuns, t.UTC())
	}
	for _, ra := range d.Info.RecentActions {
		run := scheduledRun{ScheduledAt: ra.ScheduleTime.UTC(), StartedAt: ra.ActualTime.UTC()}
		if res := ra.StartWorkflowResult; res != nil {
			run.WorkflowID, run.RunID = res.WorkflowID, res.FirstExecutionRunID
			if rec, err := s.Store.GetRun(ctx, run.RunID); err == nil {
				run.State = rec.State
			}
		}
		item.RecentRuns = append(item.RecentRuns, run)
	}
	return item
}

// putGroupWithSchedule stores a group and brings its drill schedule in line
// with drill_schedule: created or updated when set, removed when not. The
// schedule is changed first, so a refused schedule leaves the group as it
// was; a refused group write puts the schedule back.
func (s *server) putGroupWithSchedule(ctx context.Context, g ferry.Group) (bool, error) {
	if s.Temporal == nil {
		return s.Store.PutGroup(ctx, g)
	}
	prev := ""
	if old, err := s.Store.GetGroup(ctx, g.Name); err == nil {
		prev = old.DrillSchedule
	}
	made := false
	if g.DrillSchedule != "" {
		var err error
		if made, err = s.upsertDrillSchedule(ctx, s.Temporal, g, scheduleSettings{cron: g.DrillSchedule}); err != nil {
			var fe *ferry.Error
			if errors.As(err, &fe) && fe.Field == "cron" {
				fe.Field = "drill_schedule"
			}
			return false, err
		}
	}
	created, err := s.Store.PutGroup(ctx, g)
	if err != nil {
		if g.DrillSchedule != "" {
			s.undoSchedule(ctx, s.Temporal, g.Name, made, prev)
		}
		return false, err
	}
	if g.DrillSchedule == "" && prev != "" {
		if err := deleteSchedule(ctx, s.Temporal, g.Name); err != nil {
			return created, err
		}
	}
	return created, nil
}

// deleteGroupWithSchedule deletes a group and its drill schedule: no
// schedule may go on starting drills of a group that no longer exists.
func (s *server) deleteGroupWithSchedule(ctx context.Context, name string) error {
	if err := s.Store.DeleteGroup(ctx, name); err != nil {
		return err
	}
	if s.Temporal == nil {
		return nil
	}
	return deleteSchedule(ctx, s.Temporal, name)
}
