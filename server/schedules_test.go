package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// drillEnv is the API over the demo inventory, with a real worker on the
// API's task queue driving an in-process simulated cloud. Group names get a
// suffix so schedules and workflow ids of one test never meet another's.
type drillEnv struct {
	*env
	cloud *sim.Cloud
	sim   *sim.Client
	api   *apiclient.Client
	shop  string
}

func newDrillEnv(t *testing.T) *drillEnv {
	t.Helper()
	tc := temporalClient(t)
	e := newEnv(t, tc)
	inv := demo.Inventory()
	sfx := suffix()
	for i := range inv.Groups {
		inv.Groups[i].Name += "-" + sfx
	}
	ctx := context.Background()
	require.NoError(t, e.store.ApplyInventory(ctx, inv))
	cloud := sim.NewCloud(sim.Options{BootTime: 20 * time.Millisecond})
	require.NoError(t, cloud.LoadInventory(inv))
	sc := sim.NewInProcess(cloud)
	w := worker.New(tc, e.queue, &activities.Activities{Drivers: sc.Set(), Store: e.store}, worker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	d := &drillEnv{env: e, cloud: cloud, sim: sc, api: apiclient.New(e.url, nil, apiclient.WithToken(e.token)), shop: "shop-" + sfx}
	t.Cleanup(func() {
		_ = tc.ScheduleClient().GetHandle(ctx, workflows.DrillScheduleID(d.shop)).Delete(ctx)
	})
	return d
}

// waitRun waits until the API shows the run in state want.
func (d *drillEnv) waitRun(id, want string) ferry.Run {
	d.t.Helper()
	var run ferry.Run
	require.Eventually(d.t, func() bool {
		got, err := d.api.GetRun(context.Background(), id)
		run = got
		return err == nil && got.State == want
	}, 30*time.Second, 100*time.Millisecond, "run %s never reached %s (last %s: %s)", id, want, run.State, run.Message)
	return run
}

func TestDrillThroughTheAPIAndASecondOneConflicts(t *testing.T) {
	d := newDrillEnv(t)
	ctx := context.Background()
	before := d.cloud.State()

	for _, c := range []struct{ body, field string }{
		{`{"kind":"drill"}`, "group"},
		{`{"kind":"drill","group":"nope"}`, "group"},
		{`{"kind":"drill","group":"` + d.shop + `","mode":"planned"}`, "mode"},
		{`{"kind":"drill","group":"` + d.shop + `","target":"site-a"}`, "target"},
		{`{"kind":"drill","group":"` + d.shop + `","options":{"hold_seconds":-1}}`, "options.hold_seconds"},
	} {
		requireProblem(t, d.do("POST", "/v1/runs", c.body), http.StatusUnprocessableEntity, c.field)
	}

	started, err := d.api.StartRun(ctx, apiclient.StartRunRequest{
		Kind: ferry.KindDrill, Group: d.shop, RequestedBy: "zoe", Options: apiclient.RunOptions{HoldSeconds: 600},
	})
	require.NoError(t, err)
	require.Equal(t, workflows.GroupWorkflowID(d.shop), started.WorkflowID)
	require.Equal(t, "site-b", started.Site)
	held := d.waitRun(started.ID, ferry.RunPaused)
	require.Contains(t, held.Message, "holding bubble")
	require.Len(t, d.cloud.State().Bubbles, 1)

	// A second drill, and a failover, are refused while the drill runs.
	p := requireProblem(t, d.do("POST", "/v1/runs", `{"kind":"drill","group":"`+d.shop+`"}`), http.StatusConflict, "")
	require.Equal(t, started.ID, p["run_id"])
	p = requireProblem(t, d.do("POST", "/v1/runs", `{"kind":"failover","group":"`+d.shop+`"}`), http.StatusConflict, "")
	require.Equal(t, started.ID, p["run_id"])

	_, err = d.api.Steer(ctx, started.ID, "resume", apiclient.SteerRequest{By: "zoe"})
	require.NoError(t, err)
	done := d.waitRun(started.ID, ferry.RunCompleted)
	require.Len(t, done.Checks, 1)
	require.True(t, done.Checks[0].Passed)
	require.NotNil(t, done.RTOSeconds)
	require.Equal(t, before, d.cloud.State(), "the drill left nothing behind")

	report, err := d.api.Report(ctx, started.ID, true)
	require.NoError(t, err)
	require.Contains(t, string(report), "drill")
}

func TestDrillScheduleFiresSkipsOverlapsAndIsRemoved(t *testing.T) {
	d := newDrillEnv(t)
	ctx := context.Background()
	before := d.cloud.State()
	path := "/v1/groups/" + d.shop + "/drill-schedule"

	requireProblem(t, d.do("PUT", path, `{"cron":"every tuesday"}`), http.StatusUnprocessableEntity, "cron")
	requireProblem(t, d.do("PUT", path, `{"cron":"0 3 * * $"}`), http.StatusUnprocessableEntity, "cron")
	requireProblem(t, d.do("PUT", path, `{"cron":"61 3 * * 1"}`), http.StatusUnprocessableEntity, "cron")
	requireProblem(t, d.do("PUT", path, `{}`), http.StatusUnprocessableEntity, "cron")
	requireProblem(t, d.do("PUT", path, `{"cron":"0 3 * * 1","hold_seconds":-5}`), http.StatusUnprocessableEntity, "hold_seconds")
	require.Equal(t, http.StatusNotFound, d.do("PUT", "/v1/groups/nope/drill-schedule", `{"cron":"0 3 * * 1"}`).status)

	hold := 600
	item, created, err := d.api.PutDrillSchedule(ctx, d.shop, apiclient.DrillSchedule{Cron: "0 3 * * 1", HoldSeconds: &hold})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, workflows.DrillScheduleID(d.shop), item.ScheduleID)
	require.Equal(t, "0 3 * * 1", item.Cron)
	require.Equal(t, 600, item.HoldSeconds)
	require.NotEmpty(t, item.NextRuns)
	require.Equal(t, time.Monday, item.NextRuns[0].Weekday())
	g, err := d.api.GetGroup(ctx, d.shop)
	require.NoError(t, err)
	require.Equal(t, "0 3 * * 1", g.DrillSchedule, "the group says what is scheduled")

	// Temporal holds the schedule: a drill of the group on the API's task
	// queue, overlapping runs skipped.
	h := d.tc.ScheduleClient().GetHandle(ctx, workflows.DrillScheduleID(d.shop))
	desc, err := h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, desc.Schedule.Policy.Overlap)
	act, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	require.Equal(t, workflows.DrillWorkflowName, act.Workflow)
	require.Equal(t, d.queue, act.TaskQueue)

	// Let it fire every two seconds, as if the weeks went by.
	require.NoError(t, h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 2 * time.Second}}}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}}))

	// The first scheduled drill starts, records itself and holds its
	// bubble; the firings meanwhile are skipped, not stacked.
	var runs apiclient.Page[ferry.Run]
	require.Eventually(t, func() bool {
		runs, err = d.api.ListRuns(ctx, apiclient.RunFilter{Group: d.shop, Kind: ferry.KindDrill})
		return err == nil && len(runs.Items) == 1 && runs.Items[0].State == ferry.RunPaused
	}, 30*time.Second, 200*time.Millisecond, "no scheduled drill is holding: %+v", runs.Items)
	first := runs.Items[0]
	require.Equal(t, "schedule", first.RequestedBy)
	require.NotEqual(t, workflows.GroupWorkflowID(d.shop), first.WorkflowID)
	require.Eventually(t, func() bool {
		desc, err = h.Describe(ctx)
		return err == nil && desc.Info.NumActionsSkippedOverlap >= 1
	}, 15*time.Second, 200*time.Millisecond, "the schedule never skipped an overlapping drill")
	require.Equal(t, 1, desc.Info.NumActions)
	runs, err = d.api.ListRuns(ctx, apiclient.RunFilter{Group: d.shop, Kind: ferry.KindDrill})
	require.NoError(t, err)
	require.Len(t, runs.Items, 1, "overlapping drills are skipped")

	// The scheduled drill holds the group for the API too.
	p := requireProblem(t, d.do("POST", "/v1/runs", `{"kind":"drill","group":"`+d.shop+`"}`), http.StatusConflict, "")
	require.Equal(t, first.ID, p["run_id"])

	// Pause the schedule (the cron comes back), then release the drill.
	paused := true
	item, created, err = d.api.PutDrillSchedule(ctx, d.shop, apiclient.DrillSchedule{Cron: "0 3 * * 1", Paused: &paused})
	require.NoError(t, err)
	require.False(t, created)
	require.True(t, item.Paused)
	require.Equal(t, 600, item.HoldSeconds, "an absent hold keeps the schedule's")
	_, err = d.api.Steer(ctx, first.ID, "resume", apiclient.SteerRequest{By: "ann"})
	require.NoError(t, err)
	done := d.waitRun(first.ID, ferry.RunCompleted)
	require.Contains(t, done.Flags, "scheduled")
	require.Equal(t, before, d.cloud.State(), "the scheduled drill left nothing behind")

	list, err := d.api.ListSchedules(ctx)
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	s := list.Items[0]
	require.Equal(t, d.shop, s.Group)
	require.True(t, s.Paused)
	require.GreaterOrEqual(t, s.SkippedOverlap, 1)
	require.NotEmpty(t, s.RecentRuns)
	require.Equal(t, first.ID, s.RecentRuns[0].RunID)
	require.Equal(t, ferry.RunCompleted, s.RecentRuns[0].State)

	require.NoError(t, d.api.DeleteDrillSchedule(ctx, d.shop))
	_, err = h.Describe(ctx)
	var nf *serviceerror.NotFound
	require.True(t, errors.As(err, &nf), "the Temporal schedule is gone: %v", err)
	g, err = d.api.GetGroup(ctx, d.shop)
	require.NoError(t, err)
	require.Empty(t, g.DrillSchedule)
	list, err = d.api.ListSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, list.Items)
}

func TestGroupPutManagesItsDrillSchedule(t *testing.T) {
	d := newDrillEnv(t)
	ctx := context.Background()
	g, err := d.api.GetGroup(ctx, d.shop)
	require.NoError(t, err)
	h := d.tc.ScheduleClient().GetHandle(ctx, workflows.DrillScheduleID(d.shop))

	// A group PUT with drill_schedule creates the schedule...
	g.DrillSchedule = "30 2 * * 0"
	r := d.do("PUT", "/v1/groups/"+d.shop, mustJSON(t, g))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	desc, err := h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Sunday, desc.Info.NextActionTimes[0].Weekday())

	// ...a changed one updates it...
	g.DrillSchedule = "30 2 * * 3"
	r = d.do("PUT", "/v1/groups/"+d.shop, mustJSON(t, g))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	desc, err = h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, time.Wednesday, desc.Info.NextActionTimes[0].Weekday())
	var listed struct {
		Items []map[string]any `json:"items"`
	}
	r = d.do("GET", "/v1/schedules", "")
	require.Equal(t, http.StatusOK, r.status)
	require.NoError(t, json.Unmarshal(r.body, &listed))
	require.Len(t, listed.Items, 1)
	require.Equal(t, "30 2 * * 3", listed.Items[0]["cron"])

	// ...and a PUT without it removes it.
	g.DrillSchedule = ""
	r = d.do("PUT", "/v1/groups/"+d.shop, mustJSON(t, g))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	_, err = h.Describe(ctx)
	var nf *serviceerror.NotFound
	require.True(t, errors.As(err, &nf), "the Temporal schedule is gone: %v", err)

	// Deleting a scheduled group deletes its schedule.
	g.DrillSchedule = "0 1 * * *"
	r = d.do("PUT", "/v1/groups/"+d.shop, mustJSON(t, g))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, http.StatusNoContent, d.do("DELETE", "/v1/groups/"+d.shop, "").status)
	_, err = h.Describe(ctx)
	require.True(t, errors.As(err, &nf), "the Temporal schedule is gone: %v", err)
}
