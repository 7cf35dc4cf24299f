package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/workflows"
)

// dryRunTimeout bounds the wait for a worker to answer a dry run.
const dryRunTimeout = 20 * time.Second

// dryRunResponse answers POST /v1/runs with "dry_run": true.
type dryRunResponse struct {
	IsDryRun bool   `json:"dry_run"`
	Group    string `json:"group,omitempty"`
	Site     string `json:"site,omitempty"`
	Mode     string `json:"mode,omitempty"`
	workflows.DryRun
	// RTOEstimateSeconds sums, over the planned steps, the median duration
	// each took in recorded completed runs; nil without any.
	RTOEstimateSeconds *float64 `json:"rto_estimate_seconds"`
	RTOBasis           string   `json:"rto_basis"`
}

// dryRun asks a worker what a checked run would do (preconditions are read
// through the drivers, which the API never calls) and estimates its RTO
// from recorded runs. It starts nothing that changes anything.
func (s *server) dryRun(ctx context.Context, l launch) (dryRunResponse, error) {
	in := workflows.DryRunInput{Kind: l.Run.Kind}
	switch v := l.Input.(type) {
	case workflows.FailoverInput:
		in.Failover = &v
	case workflows.LifecycleInput:
		in.Lifecycle = &v
	case workflows.DrillInput:
		in.Drill = &v
	case workflows.BackendFailoverInput:
		in.Backend = &v
	case workflows.SharePromoteInput:
		in.Share = &v
	case workflows.EvacuateInput:
		in.Evacuate = &v
	default:
		return dryRunResponse{}, ferry.Invalid("dry_run", "dry runs of %s runs are not available yet", l.Run.Kind)
	}
	tc, err := s.temporal()
	if err != nil {
		return dryRunResponse{}, err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	ctx, cancel := context.WithTimeout(ctx, dryRunTimeout)
	defer cancel()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    "ferry-dryrun-" + hex.EncodeToString(id),
		TaskQueue:             s.TaskQueue,
		WorkflowRunTimeout:    dryRunTimeout,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: searchAttributes(ferry.Run{Kind: l.Run.Kind, Group: l.Run.Group, Site: l.Run.Site}),
	}, workflows.DryRunWorkflowName, in)
	if err != nil {
		return dryRunResponse{}, fmt.Errorf("start dry run: %w", err)
	}
	var plan workflows.DryRun
	if err := run.Get(ctx, &plan); err != nil {
		var app *temporal.ApplicationError
		switch {
		case errors.As(err, &app) && app.Type() == "unsupported":
			return dryRunResponse{}, ferry.Invalid("dry_run", "%s", app.Message())
		case ctx.Err() != nil:
			return dryRunResponse{}, &unavailableError{"no worker answered the dry run in time: is a worker running?"}
		case errors.As(err, &app):
			// The worker could not check (the store or a cloud did not
			// answer): no verdict on the request, which was fine.
			return dryRunResponse{}, &unavailableError{"the dry run could not check its preconditions: " + app.Message()}
		}
		return dryRunResponse{}, fmt.Errorf("dry run: %w", err)
	}
	resp := dryRunResponse{IsDryRun: true, Group: l.Run.Group, Site: l.Run.Site, Mode: l.Run.Mode, DryRun: plan}
	// What the start itself would refuse on: the scope's other run, a
	// frozen backend.
	free, err := s.scopeFree(ctx, l)
	if err != nil {
		return dryRunResponse{}, err
	}
	resp.Preconditions = append(resp.Preconditions, free...)
	for _, p := range resp.Preconditions {
		resp.Ready = resp.Ready && p.Passed
	}
	resp.RTOEstimateSeconds, resp.RTOBasis, err = s.estimateRTO(ctx, l.Run, plan.Steps)
	return resp, err
}

// scopeFree checks, without changing anything, what launch refuses a start
// on.
func (s *server) scopeFree(ctx context.Context, l launch) ([]activities.Precondition, error) {
	var out []activities.Precondition
	check := func(name string, err error) error {
		var conflict *runConflictError
		switch {
		case err == nil:
			out = append(out, activities.Precondition{Name: name, Passed: true})
		case errors.As(err, &conflict) || ferry.ErrorCode(err) == ferry.EConflict:
			out = append(out, activities.Precondition{Name: name, Detail: err.Error()})
		default:
			return err
		}
		return nil
	}
	if l.Lock != "" {
		var busy error
		runs, err := s.Store.ActiveRuns(ctx, l.Lock)
		if err != nil {
			return nil, err
		}
		for _, rec := range runs {
			closed, err := s.closedState(ctx, rec)
			if err != nil {
				return nil, err
			}
			if closed == nil {
				busy = runConflict(l.Lock, rec.ID)
				break
			}
		}
		if err := check("no other run of group "+l.Lock, busy); err != nil {
			return nil, err
		}
		if err := check("no backend of group "+l.Lock+" frozen", s.refuseIfFrozen(ctx, l.Lock)); err != nil {
			return nil, err
		}
		return out, nil
	}
	tc, err := s.temporal()
	if err != nil {
		return nil, err
	}
	var busy error
	d, err := tc.DescribeWorkflowExecution(ctx, l.WorkflowID, "")
	if err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		busy = scopeConflict(l.WorkflowID, d.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	}
	if err := check("no other run of "+l.WorkflowID, busy); err != nil {
		return nil, err
	}
	return out, nil
}

// estimateRTO sums the median recorded duration of each planned step, from
// the group's last completed runs of the kind, or the kind's in any group.
func (s *server) estimateRTO(ctx context.Context, r ferry.Run, steps []string) (*float64, string, error) {
	for _, scope := range []ferry.RunFilter{
		// This group's (or this site's) own runs first, then the kind's.
		{Kind: r.Kind, Group: r.Group, Site: siteScope(r), State: ferry.RunCompleted, Page: ferry.Page{Limit: 20}},
		{Kind: r.Kind, State: ferry.RunCompleted, Page: ferry.Page{Limit: 20}},
	} {
		runs, _, err := s.Store.ListRuns(ctx, scope)
		if err != nil {
			return nil, "", err
		}
		if len(runs) == 0 {
			continue
		}
		durations := map[string][]float64{}
		for _, run := range runs {
			for _, st := range run.Steps {
				if st.State == ferry.StepCompleted && st.Started != nil && st.Ended != nil {
					durations[st.Name] = append(durations[st.Name], st.Ended.Sub(*st.Started).Seconds())
				}
			}
		}
		total, known := 0.0, 0
		for _, name := range steps {
			if d := durations[name]; len(d) > 0 {
				total += median(d)
				known++
			}
		}
		if known == 0 {
			continue
		}
		where := "of any scope"
		switch {
		case scope.Group != "":
			where = "of group " + scope.Group
		case scope.Site != "":
			where = "of site " + scope.Site
		}
		basis := fmt.Sprintf("median step durations of %d completed %s runs %s (%d of %d planned steps have timings)",
			len(runs), r.Kind, where, known, len(steps))
		return &total, basis, nil
	}
	return nil, "no completed " + r.Kind + " run is recorded yet: no estimate", nil
}

// siteScope narrows the estimate of a run without a group (an evacuation)
// to its site's runs.
func siteScope(r ferry.Run) string {
	if r.Group == "" {
		return r.Site
	}
	return ""
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeDryRun answers a dry run with 200: nothing was started.
func (s *server) writeDryRun(w http.ResponseWriter, r *http.Request, l launch) {
	resp, err := s.dryRun(r.Context(), l)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
