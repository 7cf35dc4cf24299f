package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

func TestStartFailoverAndConflict(t *testing.T) {
	tc := temporalClient(t)
	e := newEnv(t, tc)
	shop, crm := "shop-"+suffix(), "crm-"+suffix()
	e.seed(shop, crm)

	// No worker polls the task queue: the workflow stays running.
	r := e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+shop+`","requested_by":"alice"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var started struct {
		ID, WorkflowID, State, TemporalUIURL, Site, Mode string
	}
	require.NoError(t, json.Unmarshal(r.body, &struct {
		ID            *string `json:"id"`
		WorkflowID    *string `json:"workflow_id"`
		State         *string `json:"state"`
		TemporalUIURL *string `json:"temporal_ui_url"`
		Site          *string `json:"site"`
		Mode          *string `json:"mode"`
	}{&started.ID, &started.WorkflowID, &started.State, &started.TemporalUIURL, &started.Site, &started.Mode}))
	require.NotEmpty(t, started.ID)
	require.Equal(t, workflows.GroupWorkflowID(shop), started.WorkflowID)
	require.Equal(t, ferry.RunRunning, started.State)
	require.Equal(t, "site-b", started.Site)
	require.Equal(t, ferry.ModePlanned, started.Mode)
	require.Equal(t, "http://ui.example:8233/namespaces/default/workflows/"+started.WorkflowID+"/"+started.ID+"/history", started.TemporalUIURL)

	// Temporal holds the workflow with its search attributes and input.
	ctx := context.Background()
	d, err := tc.DescribeWorkflowExecution(ctx, started.WorkflowID, started.ID)
	require.NoError(t, err)
	require.Equal(t, workflows.FailoverWorkflowName, d.GetWorkflowExecutionInfo().GetType().GetName())
	require.Equal(t, e.queue, d.GetWorkflowExecutionInfo().GetTaskQueue())
	sa := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	require.Contains(t, sa, "FerryGroup")
	require.Contains(t, sa, "FerrySite")
	require.Contains(t, sa, "FerryRunKind")

	// The store holds the record.
	rec, err := e.store.GetRun(ctx, started.ID)
	require.NoError(t, err)
	require.Equal(t, shop, rec.Group)
	require.Equal(t, "site-b", rec.Site)
	require.Equal(t, "alice", rec.RequestedBy)
	require.Equal(t, ferry.RunRunning, rec.State)

	// GET answers the record when the workflow cannot answer a query.
	r = e.do("GET", "/v1/runs/"+started.ID, "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var got ferry.Run
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.Equal(t, ferry.RunRunning, got.State)
	require.Equal(t, started.ID, got.ID)

	// A second start of the group is refused, naming the running run.
	before := e.snapshot()
	p := requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+shop+`","mode":"unplanned"}`), http.StatusConflict, "")
	require.Equal(t, started.ID, p["run_id"])
	require.Contains(t, p["detail"], started.ID)
	require.Equal(t, before, e.snapshot())

	// Temporal refuses too when the store does not know the run: the
	// workflow id is the mutex.
	other, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.GroupWorkflowID(crm), TaskQueue: e.queue,
	}, workflows.FailoverWorkflowName, workflows.FailoverInput{Group: crm})
	require.NoError(t, err)
	p = requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+crm+`"}`), http.StatusConflict, "")
	require.Equal(t, other.GetRunID(), p["run_id"])
	require.Equal(t, before, e.snapshot())

	// Once the run is gone from Temporal, the group may run again and the
	// stale record is brought in line.
	require.NoError(t, tc.TerminateWorkflow(ctx, started.WorkflowID, started.ID, "test"))
	r = e.do("GET", "/v1/runs/"+started.ID, "")
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.Equal(t, ferry.RunAborted, got.State, "body: %s", r.body)

	// A third site is no failover target: the group moves between its
	// primary and its DR site.
	requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+shop+`","target":"site-c"}`), http.StatusUnprocessableEntity, "target")
	r = e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+shop+`","target":"site-b"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	rec, err = e.store.GetRun(ctx, started.ID)
	require.NoError(t, err)
	require.Equal(t, ferry.RunAborted, rec.State)
	require.NotNil(t, rec.Ended)

	var page struct {
		Items []ferry.Run `json:"items"`
	}
	r = e.do("GET", "/v1/runs?group="+shop, "")
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Items, 2)
	require.Equal(t, "site-b", page.Items[0].Site)
	require.Equal(t, ferry.RunRunning, page.Items[0].State)
	require.Equal(t, ferry.RunAborted, page.Items[1].State)

	for _, id := range []string{page.Items[0].ID} {
		_ = tc.TerminateWorkflow(ctx, workflows.GroupWorkflowID(shop), id, "test done")
	}
	_ = tc.TerminateWorkflow(ctx, workflows.GroupWorkflowID(crm), other.GetRunID(), "test done")
}

// fakeFailover stands in for the real failover workflow: it waits for
// approval, answers the progress query and takes approve and abort.
func fakeFailover(ctx workflow.Context, in workflows.FailoverInput) (ferry.Run, error) {
	run := ferry.Run{
		Kind: ferry.KindFailover, Group: in.Group, Site: in.TargetSite, Mode: in.Mode,
		State: ferry.RunWaitingApproval,
		Steps: []ferry.Step{
			{Name: "precheck", State: ferry.StepCompleted, Attempts: 1},
			{Name: "approval", State: ferry.StepRunning, Attempts: 1},
		},
	}
	if err := workflow.SetQueryHandler(ctx, workflows.QueryProgress, func() (ferry.Run, error) { return run, nil }); err != nil {
		return run, err
	}
	done := false
	err := workflow.SetUpdateHandlerWithOptions(ctx, workflows.UpdateApprove,
		func(ctx workflow.Context, req workflows.SteerRequest) error {
			run.Approvals = append(run.Approvals, ferry.Approval{By: req.By, At: workflow.Now(ctx), Comment: req.Comment})
			run.Steps[1].State = ferry.StepCompleted
			run.State = ferry.RunRunning
			return nil
		},
		workflow.UpdateHandlerOptions{Validator: func(req workflows.SteerRequest) error {
			if run.State != ferry.RunWaitingApproval {
				return errors.New("the run is not waiting for approval")
			}
			return nil
		}})
	if err != nil {
		return run, err
	}
	err = workflow.SetUpdateHandler(ctx, workflows.UpdateAbort, func(ctx workflow.Context, req workflows.SteerRequest) error {
		run.Events = append(run.Events, ferry.Event{Action: "abort", By: req.By, At: workflow.Now(ctx)})
		done = true
		return nil
	})
	if err != nil {
		return run, err
	}
	if err := workflow.Await(ctx, func() bool { return done }); err != nil {
		return run, err
	}
	run.State = ferry.RunAborted
	return run, nil
}

func TestSteerAndLiveProgress(t *testing.T) {
	tc := temporalClient(t)
	e := newEnv(t, tc)
	shop := "shop-" + suffix()
	e.seed(shop)

	w := worker.New(tc, e.queue, worker.Options{})
	w.RegisterWorkflowWithOptions(fakeFailover, workflow.RegisterOptions{Name: workflows.FailoverWorkflowName})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	r := e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+shop+`","requested_by":"alice"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := r.json(t)["id"].(string)

	// The live progress replaces the stored record while it runs.
	var run ferry.Run
	require.Eventually(t, func() bool {
		r = e.do("GET", "/v1/runs/"+id, "")
		run = ferry.Run{}
		return r.status == http.StatusOK && json.Unmarshal(r.body, &run) == nil && run.State == ferry.RunWaitingApproval
	}, 10*time.Second, 100*time.Millisecond, "body: %s", r.body)
	require.Equal(t, id, run.ID)
	require.Equal(t, "alice", run.RequestedBy, "the record fills what the query leaves out")
	require.Len(t, run.Steps, 2)

	var page struct {
		Items []ferry.Run `json:"items"`
	}
	r = e.do("GET", "/v1/runs?group="+shop, "")
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, ferry.RunWaitingApproval, page.Items[0].State)

	r = e.do("POST", "/v1/runs/"+id+"/approve", `{"by":"bob","comment":"go"}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &run))
	require.Equal(t, ferry.RunRunning, run.State)
	require.Len(t, run.Approvals, 1)
	// The record names the token that approved, and the person it named.
	require.Equal(t, "test-admin (bob)", run.Approvals[0].By)

	// The validator refuses a second approval.
	p := requireProblem(t, e.do("POST", "/v1/runs/"+id+"/approve", ""), http.StatusConflict, "")
	require.Contains(t, p["detail"], "not waiting for approval")
	require.Equal(t, id, p["run_id"])

	// An update the workflow does not know is refused the same way.
	requireProblem(t, e.do("POST", "/v1/runs/"+id+"/pause", `{}`), http.StatusConflict, "")

	r = e.do("POST", "/v1/runs/"+id+"/abort", `{"by":"carol"}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)

	// The workflow has closed; the store still says running (the fake does
	// not record), so the API reports Temporal's word.
	require.Eventually(t, func() bool {
		r = e.do("GET", "/v1/runs/"+id, "")
		return json.Unmarshal(r.body, &run) == nil && run.State == ferry.RunAborted
	}, 10*time.Second, 100*time.Millisecond, "body: %s", r.body)

	p = requireProblem(t, e.do("POST", "/v1/runs/"+id+"/approve", ""), http.StatusConflict, "")
	require.Contains(t, p["detail"], "run has ended")

	r = e.do("GET", "/v1/runs/"+id+"/report", "", "Accept", "text/markdown")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), "aborted")
}
