package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/telemetry"
	"github.com/ferrydr/ferry/workflows"
)

// Timeouts of calls to Temporal made while answering a request.
const (
	queryTimeout  = 3 * time.Second
	updateTimeout = 30 * time.Second
	// liveQueries caps the progress queries one list answer makes at once.
	liveQueries = 8
	// closingWait bounds the wait for a run that has recorded its end to
	// close its workflow, before a new run of its scope starts.
	closingWait = 10 * time.Second
)

// Run kinds of the catalog (DESIGN.md section 3). Each implemented kind
// registers its planner in kinds from its own file (kind_<name>.go).
var (
	catalogKinds = []string{
		"failover", "protect", "unprotect", "reprotect", "failback", "drill", "evacuate",
		"backend-failover", "share-promote", "suspend", "resume",
	}
	runStates = []string{
		ferry.RunPending, ferry.RunRunning, ferry.RunWaitingApproval, ferry.RunPaused,
		ferry.RunCompleted, ferry.RunRolledBack, ferry.RunFailed, ferry.RunAborted,
	}
)

// planner checks a start request of one kind against the inventory and
// says what to start. It writes nothing.
type planner func(s *server, ctx context.Context, req startRunRequest) (launch, error)

var kinds = map[string]planner{}

func implementedKinds() []string {
	var out []string
	for _, k := range catalogKinds {
		if kinds[k] != nil {
			out = append(out, k)
		}
	}
	return out
}

// launch is a checked start: which workflow, under which id, with what
// input, and the run record to keep.
type launch struct {
	WorkflowID   string
	WorkflowName string
	Input        any
	// Lock is the group whose mutating runs exclude each other ("" for
	// runs that hold no group).
	Lock string
	Run  ferry.Run
}

// startRunRequest is the body of POST /v1/runs.
type startRunRequest struct {
	Kind        string     `json:"kind"`
	Group       string     `json:"group"`
	Site        string     `json:"site"`
	Backend     string     `json:"backend"`
	Share       string     `json:"share"`
	Mode        string     `json:"mode"`
	Target      string     `json:"target"`
	Options     runOptions `json:"options"`
	RequestedBy string     `json:"requested_by"`
	DryRun      bool       `json:"dry_run"`
}

type runOptions struct {
	QuiescePolicy string `json:"quiesce_policy"`
	SkipApproval  bool   `json:"skip_approval"`
	// HoldSeconds keeps a drill's bubble open for manual testing.
	HoldSeconds int `json:"hold_seconds"`
	// Concurrency bounds how many groups an evacuation fails over at once.
	Concurrency int `json:"concurrency"`
	// FencedOutOfBand states, for an unplanned failover, how the old
	// primary was cut off outside Ferry (storage without a fence).
	FencedOutOfBand string `json:"fenced_out_of_band"`
}

// startRunResponse answers a started run.
type startRunResponse struct {
	ID            string `json:"id"`
	WorkflowID    string `json:"workflow_id"`
	Kind          string `json:"kind"`
	Group         string `json:"group,omitempty"`
	Site          string `json:"site,omitempty"`
	Mode          string `json:"mode,omitempty"`
	State         string `json:"state"`
	TemporalUIURL string `json:"temporal_ui_url,omitempty"`
}

func (s *server) temporal() (client.Client, error) {
	if s.Temporal == nil {
		return nil, &unavailableError{"no temporal client is configured"}
	}
	return s.Temporal, nil
}

func (s *server) startRun(w http.ResponseWriter, r *http.Request) {
	var req startRunRequest
	if err := decode(w, r, &req, false); err != nil {
		s.error(w, r, err)
		return
	}
	plan := kinds[req.Kind]
	switch {
	case req.Kind == "":
		s.error(w, r, ferry.Invalid("kind", "is required (one of %v)", implementedKinds()))
		return
	case plan == nil && slices.Contains(catalogKinds, req.Kind):
		s.error(w, r, ferry.Invalid("kind", "%q runs are not implemented yet", req.Kind))
		return
	case plan == nil:
		s.error(w, r, ferry.Invalid("kind", "unknown run kind %q (one of %v)", req.Kind, implementedKinds()))
		return
	}
	// Whole-site and whole-backend runs need more than an operator; a dry
	// run shows what a run would touch, so it needs what the run needs.
	if err := requireKindRole(r.Context(), req.Kind); err != nil {
		s.error(w, r, err)
		return
	}
	if req.RequestedBy == "" {
		req.RequestedBy = actor(r.Context(), "")
	}
	l, err := plan(s, r.Context(), req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	l.Run.StartedBy = actor(r.Context(), "")
	if req.DryRun {
		s.writeDryRun(w, r, l)
		return
	}
	resp, err := s.launch(r.Context(), l)
	if err != nil {
		s.error(w, r, err)
		return
	}
	noteRun(r.Context(), resp.ID)
	writeJSON(w, http.StatusCreated, resp)
}

func init() { kinds[ferry.KindFailover] = (*server).planFailover }

// planFailover checks a failover request against the inventory.
func (s *server) planFailover(ctx context.Context, req startRunRequest) (launch, error) {
	if req.Group == "" {
		return launch{}, ferry.Invalid("group", "is required for a failover")
	}
	for _, f := range []struct{ name, value string }{{"site", req.Site}, {"backend", req.Backend}, {"share", req.Share}} {
		if f.value != "" {
			return launch{}, ferry.Invalid(f.name, "a failover's scope is a group; %s is not used", f.name)
		}
	}
	g, err := s.Store.GetGroup(ctx, req.Group)
	if ferry.ErrorCode(err) == ferry.ENotFound {
		return launch{}, ferry.Invalid("group", "group %q does not exist", req.Group)
	} else if err != nil {
		return launch{}, err
	}
	mode := req.Mode
	switch mode {
	case "":
		mode = ferry.ModePlanned
	case ferry.ModePlanned, ferry.ModeUnplanned:
	default:
		return launch{}, ferry.Invalid("mode", "must be %s or %s, not %q", ferry.ModePlanned, ferry.ModeUnplanned, mode)
	}
	active := g.ActiveSite
	if active == "" {
		active = g.PrimarySite
	}
	target := req.Target
	if target == "" {
		// The group's other site: its DR site from home, home from there.
		target = g.DRSite
		if active == g.DRSite {
			target = g.PrimarySite
		}
	}
	if _, err := s.Store.GetSite(ctx, target); ferry.ErrorCode(err) == ferry.ENotFound {
		return launch{}, ferry.Invalid("target", "site %q does not exist", target)
	} else if err != nil {
		return launch{}, err
	}
	if target == active {
		return launch{}, ferry.Invalid("target", "group %q already runs at site %q", g.Name, target)
	}
	if target != g.PrimarySite && target != g.DRSite {
		return launch{}, ferry.Invalid("target", "group %q fails over between its primary site %q and its DR site %q, not to %q",
			g.Name, g.PrimarySite, g.DRSite, target)
	}
	switch req.Options.QuiescePolicy {
	case "", ferry.QuiesceAbort, ferry.QuiesceContinue:
	default:
		return launch{}, ferry.Invalid("options.quiesce_policy", "must be %s or %s, not %q",
			ferry.QuiesceAbort, ferry.QuiesceContinue, req.Options.QuiescePolicy)
	}
	if f := req.Options.FencedOutOfBand; f != "" {
		switch {
		case mode != ferry.ModeUnplanned:
			return launch{}, ferry.Invalid("options.fenced_out_of_band", "applies to unplanned failovers only: a planned one demotes the primary itself")
		case len(f) > 500 || strings.ContainsAny(f, "\r\n\x00"):
			return launch{}, ferry.Invalid("options.fenced_out_of_band", "one line of at most 500 characters saying how the old primary was cut off")
		}
	}
	return launch{
		WorkflowID:   workflows.GroupWorkflowID(g.Name),
		WorkflowName: workflows.FailoverWorkflowName,
		Lock:         g.Name,
		Input: workflows.FailoverInput{
			Group:           g.Name,
			Mode:            mode,
			TargetSite:      target,
			RequestedBy:     req.RequestedBy,
			QuiescePolicy:   req.Options.QuiescePolicy,
			SkipApproval:    req.Options.SkipApproval,
			FencedOutOfBand: req.Options.FencedOutOfBand,
		},
		Run: ferry.Run{Kind: ferry.KindFailover, Group: g.Name, Site: target, Mode: mode, RequestedBy: req.RequestedBy},
	}, nil
}

// launch starts a checked run. A mutating run's workflow id derives from its
// group, so Temporal itself refuses a second one (invariant 4).
func (s *server) launch(ctx context.Context, l launch) (startRunResponse, error) {
	tc, err := s.temporal()
	if err != nil {
		return startRunResponse{}, err
	}
	if l.Lock != "" {
		if err := s.refuseIfRunning(ctx, l.Lock); err != nil {
			return startRunResponse{}, err
		}
		if err := s.refuseIfFrozen(ctx, l.Lock); err != nil {
			return startRunResponse{}, err
		}
	}
	wfID := l.WorkflowID
	opts := client.StartWorkflowOptions{
		ID:                       wfID,
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Without it the SDK answers a conflict with the running workflow's
		// handle, and a second start would look like a success.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    searchAttributes(l.Run),
	}
	run, err := tc.ExecuteWorkflow(ctx, opts, l.WorkflowName, l.Input)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		runID := started.RunId
		if runID == "" {
			if d, derr := tc.DescribeWorkflowExecution(ctx, wfID, ""); derr == nil {
				runID = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
			}
		}
		// A run records its end in the store an instant before its
		// workflow closes: a client that read "completed" and starts the
		// next run at once meets that instant. Wait it out, then start.
		if rec, rerr := s.Store.GetRun(ctx, runID); rerr == nil && ferry.RunEnded(rec.State) {
			wctx, cancel := context.WithTimeout(ctx, closingWait)
			_ = tc.GetWorkflow(wctx, wfID, runID).Get(wctx, nil)
			cancel()
			run, err = tc.ExecuteWorkflow(ctx, opts, l.WorkflowName, l.Input)
		}
	}
	if errors.As(err, &started) {
		runID := started.RunId
		if runID == "" {
			if d, derr := tc.DescribeWorkflowExecution(ctx, wfID, ""); derr == nil {
				runID = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
			}
		}
		if l.Lock != "" {
			return startRunResponse{}, runConflict(l.Lock, runID)
		}
		scope := l.Run.Kind + " scope " + wfID
		for _, s := range []struct{ what, name string }{{"backend", l.Run.Backend}, {"site", l.Run.Site}} {
			if s.name != "" {
				scope = fmt.Sprintf("%s %q", s.what, s.name)
				break
			}
		}
		return startRunResponse{}, scopeConflict(scope, runID)
	}
	if err != nil {
		return startRunResponse{}, fmt.Errorf("start %s run %s: %w", l.Run.Kind, wfID, err)
	}

	rec := l.Run
	rec.ID, rec.WorkflowID, rec.State, rec.Created = run.GetRunID(), wfID, ferry.RunRunning, time.Now().UTC()
	telemetry.AddLogAttrs(ctx, runLogAttrs(rec)...) // the request's lines name the run it started
	if err := s.Store.CreateRun(ctx, rec); err != nil {
		// The run has started and owns the group; failing the request
		// would invite a retry that can only meet a 409. The workflow
		// writes its full record when it ends.
		s.Logger.ErrorContext(ctx, "run started but its record was not stored",
			slog.String("run_id", rec.ID), slog.String("workflow_id", wfID), slog.Any("error", err))
	}
	return startRunResponse{
		ID:            rec.ID,
		WorkflowID:    wfID,
		Kind:          rec.Kind,
		Group:         rec.Group,
		Site:          rec.Site,
		Mode:          rec.Mode,
		State:         rec.State,
		TemporalUIURL: s.uiURL(wfID, rec.ID),
	}, nil
}

// searchAttributes index a run in the Temporal UI by group, site and kind.
func searchAttributes(r ferry.Run) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{workflows.SearchKind.ValueSet(r.Kind)}
	if r.Group != "" {
		updates = append(updates, workflows.SearchGroup.ValueSet(r.Group))
	}
	if r.Site != "" {
		updates = append(updates, workflows.SearchSite.ValueSet(r.Site))
	}
	return temporal.NewSearchAttributes(updates...)
}

func runConflict(group, runID string) error {
	return scopeConflict(fmt.Sprintf("group %q", group), runID)
}

// scopeConflict says that what a run acts on (a group, a site, a backend)
// already has a running run, and which.
func scopeConflict(scope, runID string) error {
	msg := scope + " already has a running run"
	if runID != "" {
		msg += ": " + runID
	}
	return &runConflictError{RunID: runID, Msg: msg}
}

// refuseIfRunning refuses a start while the store records an unfinished run
// of the group that Temporal confirms is still running. A record Temporal
// reports closed is brought in line with Temporal first, so the two agree.
func (s *server) refuseIfRunning(ctx context.Context, group string) error {
	runs, err := s.Store.ActiveRuns(ctx, group)
	if err != nil {
		return err
	}
	for _, rec := range runs {
		closed, err := s.closedState(ctx, rec)
		if err != nil {
			return err
		}
		if closed == nil {
			return runConflict(group, rec.ID)
		}
		s.reconcile(ctx, rec, *closed)
	}
	return nil
}

// closedState returns the record of a run as Temporal saw it close, or nil
// while the workflow is still running.
func (s *server) closedState(ctx context.Context, rec ferry.Run) (*ferry.Run, error) {
	wf, err := s.inspect(ctx, rec)
	return wf.closed, err
}

// workflowState is what Temporal's description of a run's workflow tells.
type workflowState struct {
	// closed is the run's record as the workflow closed, nil while it runs.
	closed *ferry.Run
	// answering is false while the workflow has not completed its first
	// task (no worker has picked it up), when a query can only wait.
	answering bool
}

// inspect describes a run's workflow. A workflow Temporal no longer knows
// counts as closed (failed), with the stored record as its last word.
func (s *server) inspect(ctx context.Context, rec ferry.Run) (workflowState, error) {
	tc, err := s.temporal()
	if err != nil {
		return workflowState{}, err
	}
	d, err := tc.DescribeWorkflowExecution(ctx, rec.WorkflowID, rec.ID)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		out := rec
		out.State = ferry.RunFailed
		out.Message = "the workflow of this run no longer exists in Temporal"
		return workflowState{closed: &out}, nil
	}
	if err != nil {
		return workflowState{}, timedOut(fmt.Errorf("describe workflow %s/%s: %w", rec.WorkflowID, rec.ID, err), "temporal")
	}
	info := d.GetWorkflowExecutionInfo()
	status := info.GetStatus()
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		// Started and first task scheduled: nothing has run yet.
		return workflowState{answering: info.GetHistoryLength() > 2}, nil
	}
	out := rec
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		// A failover's result is its final record, when it returns one.
		var result ferry.Run
		if err := tc.GetWorkflow(ctx, rec.WorkflowID, rec.ID).Get(ctx, &result); err == nil && ferry.RunEnded(result.State) {
			out = mergeRun(rec, result)
		}
	}
	if !ferry.RunEnded(out.State) {
		out.State = stateOfStatus(status)
		out.Message = "the workflow closed as " + statusName(status)
	}
	if out.Ended == nil && info.GetCloseTime() != nil {
		t := info.GetCloseTime().AsTime().UTC()
		out.Ended = &t
	}
	return workflowState{closed: &out}, nil
}

// stateOfStatus maps a closed workflow's status to a run state.
func stateOfStatus(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return ferry.RunRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return ferry.RunCompleted
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return ferry.RunAborted
	}
	return ferry.RunFailed // failed, timed out
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	if n, ok := enumspb.WorkflowExecutionStatus_name[int32(s)]; ok {
		return n
	}
	return s.String()
}

// reconcile writes the closed state of a run whose record was left
// unfinished (its workflow ended without recording it), unless the record
// was finished meanwhile.
func (s *server) reconcile(ctx context.Context, stale, closed ferry.Run) {
	cur, err := s.Store.GetRun(ctx, stale.ID)
	if err == nil && ferry.RunEnded(cur.State) {
		return
	}
	if err := s.Store.FinishRun(ctx, closed); err != nil {
		s.Logger.WarnContext(ctx, "could not reconcile a stale run record",
			slog.String("run_id", stale.ID), slog.Any("error", err))
		return
	}
	s.Logger.InfoContext(ctx, "reconciled a stale run record with Temporal",
		slog.String("run_id", stale.ID), slog.String("state", closed.State))
}

// live returns the truth about a run: the stored record of a finished run,
// else the workflow's progress query, else what Temporal says of its close.
func (s *server) live(ctx context.Context, rec ferry.Run) (ferry.Run, error) {
	if ferry.RunEnded(rec.State) || s.Temporal == nil {
		return rec, nil
	}
	// Concurrent reads of one run share one read, and the workflow's
	// answer is reused briefly (progress.go).
	return s.progress.get(ctx, rec.ID, func(ctx context.Context) (ferry.Run, bool, error) { return s.readLive(ctx, rec) })
}

// readLive asks Temporal about an unfinished run: its workflow's progress,
// or how it closed. progress is true when the answer is the workflow's own
// answer to the progress query.
func (s *server) readLive(ctx context.Context, rec ferry.Run) (run ferry.Run, progress bool, err error) {
	wf, err := s.inspect(ctx, rec)
	if err != nil {
		return rec, false, err
	}
	if wf.closed != nil {
		// The workflow may have written its final record since we read it.
		if cur, err := s.Store.GetRun(ctx, rec.ID); err == nil && ferry.RunEnded(cur.State) {
			return cur, false, nil
		}
		return *wf.closed, false, nil
	}
	if !wf.answering {
		return rec, false, nil
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := s.Temporal.QueryWorkflow(qctx, rec.WorkflowID, rec.ID, workflows.QueryProgress)
	var live ferry.Run
	if err == nil {
		err = v.Get(&live)
	}
	if err != nil {
		// Running but not answering (workers down or busy): the record is
		// the best we know.
		s.Logger.WarnContext(ctx, "progress query failed", slog.String("run_id", rec.ID), slog.Any("error", err))
		return rec, false, nil
	}
	return mergeRun(rec, live), true, nil
}

// mergeRun lays the live progress over the stored record: the workflow
// knows the state and steps; the record keeps what the API set at start.
func mergeRun(stored, live ferry.Run) ferry.Run {
	out := live
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&out.ID, stored.ID)
	fill(&out.WorkflowID, stored.WorkflowID)
	fill(&out.Kind, stored.Kind)
	fill(&out.Group, stored.Group)
	fill(&out.Site, stored.Site)
	fill(&out.Backend, stored.Backend)
	fill(&out.Mode, stored.Mode)
	fill(&out.State, stored.State)
	fill(&out.RequestedBy, stored.RequestedBy)
	fill(&out.StartedBy, stored.StartedBy)
	fill(&out.Project, stored.Project)
	if out.Created.IsZero() {
		out.Created = stored.Created
	}
	return out
}

func (s *server) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.runByID(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *server) runByID(ctx context.Context, id string) (ferry.Run, error) {
	rec, err := s.Store.GetRun(ctx, id)
	if err != nil {
		return ferry.Run{}, err
	}
	return s.live(ctx, rec)
}

func (s *server) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := pageFrom(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	f := ferry.RunFilter{Group: q.Get("group"), Site: q.Get("site"), Kind: q.Get("kind"), State: q.Get("state"), Page: p}
	if f.State != "" && !slices.Contains(runStates, f.State) {
		s.error(w, r, ferry.Invalid("state", "unknown run state %q (one of %v)", f.State, runStates))
		return
	}
	if f.Kind != "" && !slices.Contains(catalogKinds, f.Kind) {
		s.error(w, r, ferry.Invalid("kind", "unknown run kind %q", f.Kind))
		return
	}
	// The store records every unfinished run as running until it ends; the
	// workflow knows whether it is paused or waiting for approval. So a
	// filter on a live state reads the unfinished runs and filters on their
	// live state.
	want := f.State
	if want != "" && !ferry.RunEnded(want) {
		f.State = ferry.RunRunning
	}
	runs, next, err := s.Store.ListRuns(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if runs == nil {
		runs = []ferry.Run{}
	}

	// Unfinished runs show their live progress; one that does not answer
	// keeps its record.
	var wg sync.WaitGroup
	sem := make(chan struct{}, liveQueries)
	for i := range runs {
		if ferry.RunEnded(runs[i].State) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if run, err := s.live(r.Context(), runs[i]); err == nil {
				runs[i] = run
			}
		}()
	}
	wg.Wait()
	if want != "" && !ferry.RunEnded(want) {
		kept := runs[:0]
		for _, run := range runs {
			if run.State == want {
				kept = append(kept, run)
			}
		}
		runs = kept
	}
	writeJSON(w, http.StatusOK, list[ferry.Run]{Items: runs, NextPageToken: next})
}

// steerRun sends one of the steering updates (approve, pause, resume,
// abort, retry, skip) and answers the run's progress after it.
func (s *server) steerRun(w http.ResponseWriter, r *http.Request) {
	action := chi.URLParam(r, "action")
	var req workflows.SteerRequest
	if err := decode(w, r, &req, true); err != nil {
		s.error(w, r, err)
		return
	}
	ctx := r.Context()
	rec, err := s.Store.GetRun(ctx, chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	noteRun(ctx, rec.ID)
	if err := requireKindRole(ctx, rec.Kind); err != nil {
		s.error(w, r, err)
		return
	}
	if ferry.RunEnded(rec.State) {
		s.error(w, r, &runConflictError{RunID: rec.ID, Msg: fmt.Sprintf("run has ended (%s)", rec.State)})
		return
	}
	// The run's record names the token that steered it, and the person
	// the client names if it names another.
	req.By = actor(ctx, req.By)
	tc, err := s.temporal()
	if err != nil {
		s.error(w, r, err)
		return
	}
	err = s.update(ctx, tc, rec, action, req)
	// Whatever the update did, the progress read before it is no longer
	// the truth: the next read asks the workflow.
	s.progress.invalidate(rec.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	run, err := s.live(ctx, rec)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *server) update(ctx context.Context, tc client.Client, rec ferry.Run, action string, req workflows.SteerRequest) error {
	uctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	h, err := tc.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID:   rec.WorkflowID,
		RunID:        rec.ID,
		UpdateName:   action,
		Args:         []any{req},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(uctx, nil)
	}
	if err == nil {
		return nil
	}
	var (
		appErr *temporal.ApplicationError
		nf     *serviceerror.NotFound
	)
	switch {
	case errors.As(err, &appErr):
		// The workflow refused: a validator or the handler said why.
		return &runConflictError{RunID: rec.ID, Msg: appErr.Message()}
	case errors.As(err, &nf):
		return &runConflictError{RunID: rec.ID, Msg: "run has ended"}
	}
	if closed, cerr := s.closedState(ctx, rec); cerr == nil && closed != nil {
		return &runConflictError{RunID: rec.ID, Msg: "run has ended"}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, new(*serviceerror.DeadlineExceeded)) {
		return &timeoutError{fmt.Sprintf("the run did not answer the %s update within %s; is a worker running?", action, updateTimeout)}
	}
	return fmt.Errorf("%s run %s: %w", action, rec.ID, err)
}

// uiURL links to a run's history in the Temporal Web UI.
func (s *server) uiURL(wfID, runID string) string {
	if s.TemporalUIURL == "" {
		return ""
	}
	base := s.TemporalUIURL
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s/history",
		base, url.PathEscape(s.Namespace), url.PathEscape(wfID), url.PathEscape(runID))
}
