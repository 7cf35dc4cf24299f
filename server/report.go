package server

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// ReportVersion is the version of the report document's shape. Fields may
// be added within a version; none is renamed or removed.
const ReportVersion = 1

// Verdicts of a report.
const (
	VerdictPassed     = "passed"      // completed, every check passed, every set objective met
	VerdictFailed     = "failed"      // ended otherwise, a check failed, or an objective was missed
	VerdictInProgress = "in_progress" // the run has not ended
)

// Report is a run's report: what an operator files after a failover and
// what an auditor asks for after a drill. JSON, Markdown and HTML are all
// rendered from it. The run's summary fields keep the names they have in
// the run record (GET /v1/runs/{id}); lists are never null.
type Report struct {
	ReportVersion  int       `json:"report_version"`
	Generated      time.Time `json:"generated"`
	Title          string    `json:"title"`
	Verdict        string    `json:"verdict"`
	VerdictReasons []string  `json:"verdict_reasons"`

	ID          string     `json:"id"`
	WorkflowID  string     `json:"workflow_id"`
	Kind        string     `json:"kind"`
	Group       string     `json:"group,omitempty"`
	Project     string     `json:"project,omitempty"`
	Site        string     `json:"site,omitempty"`
	Backend     string     `json:"backend,omitempty"`
	Share       string     `json:"share,omitempty"`
	Mode        string     `json:"mode,omitempty"`
	State       string     `json:"state"`
	RequestedBy string     `json:"requested_by,omitempty"`
	StartedBy   string     `json:"started_by,omitempty"`
	Created     time.Time  `json:"created"`
	Ended       *time.Time `json:"ended,omitempty"`
	// DurationSeconds is created to ended, or to Generated while running.
	DurationSeconds float64  `json:"duration_seconds"`
	Message         string   `json:"message,omitempty"`
	Flags           []string `json:"flags"`

	Objectives ReportObjectives `json:"objectives"`
	// Timeline is the run's steps in order, with offsets from Created.
	Timeline  []TimelineEntry  `json:"timeline"`
	Approvals []ReportApproval `json:"approvals"`
	// Pauses are the operator's pauses, each to its resume (or abort, or
	// the run's end).
	Pauses []ReportPause `json:"pauses"`
	// Events is everything done to the run by people and by Ferry:
	// approve, pause, resume, retry, skip, abort, cancel, failed undos.
	Events   []ReportEvent    `json:"events"`
	Checks   []ReportCheck    `json:"checks"`
	Touched  []string         `json:"touched"`
	Children []ferry.ChildRun `json:"children"`
}

// ReportObjectives holds what the run achieved against its group's
// objectives, read from the group when the report is made.
type ReportObjectives struct {
	RPO ReportObjective `json:"rpo"`
	RTO ReportObjective `json:"rto"`
	// WritesLost is what the storage reported lost (-1: it cannot tell).
	WritesLost      *int64 `json:"writes_lost,omitempty"`
	WritesDiscarded *int64 `json:"writes_discarded,omitempty"`
	// Source says where the objectives come from.
	Source string `json:"source"`
}

// ReportObjective is one objective: the target, what the run achieved, and
// whether it was met (null when either is unknown).
type ReportObjective struct {
	ObjectiveSeconds *int     `json:"objective_seconds"`
	AchievedSeconds  *float64 `json:"achieved_seconds"`
	Met              *bool    `json:"met"`
}

// TimelineEntry is one step of the run on the run's clock.
type TimelineEntry struct {
	Step               string     `json:"step"`
	State              string     `json:"state"`
	Started            *time.Time `json:"started,omitempty"`
	Ended              *time.Time `json:"ended,omitempty"`
	StartOffsetSeconds *float64   `json:"start_offset_seconds"`
	EndOffsetSeconds   *float64   `json:"end_offset_seconds"`
	DurationSeconds    *float64   `json:"duration_seconds"`
	Attempts           int        `json:"attempts"`
	Error              string     `json:"error,omitempty"`
	Note               string     `json:"note,omitempty"`
	Output             string     `json:"output,omitempty"`
}

// ReportApproval is who approved the run, and when.
type ReportApproval struct {
	By            string    `json:"by"`
	At            time.Time `json:"at"`
	OffsetSeconds float64   `json:"offset_seconds"`
	Comment       string    `json:"comment,omitempty"`
}

// ReportPause is an operator's pause: from the request to its end.
type ReportPause struct {
	By                string     `json:"by"`
	From              time.Time  `json:"from"`
	To                *time.Time `json:"to,omitempty"`
	FromOffsetSeconds float64    `json:"from_offset_seconds"`
	ToOffsetSeconds   float64    `json:"to_offset_seconds"`
	EndedBy           string     `json:"ended_by,omitempty"`
	EndedWith         string     `json:"ended_with"` // resume, abort, or run_end (still paused)
	Comment           string     `json:"comment,omitempty"`
	ResumeComment     string     `json:"resume_comment,omitempty"`
	StepWhenRequested string     `json:"step,omitempty"`
}

// ReportEvent is something done to the run.
type ReportEvent struct {
	Action        string    `json:"action"`
	By            string    `json:"by"`
	At            time.Time `json:"at"`
	OffsetSeconds float64   `json:"offset_seconds"`
	Step          string    `json:"step,omitempty"`
	Comment       string    `json:"comment,omitempty"`
}

// ReportCheck is one verification check with its result.
type ReportCheck struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Result string `json:"result"` // passed or failed
	Detail string `json:"detail,omitempty"`
}

// buildReport makes a run's report. group is the run's group as it is now
// (nil when the run has none or it is gone); now stands for the end of
// what has not ended yet.
func buildReport(run ferry.Run, group *ferry.Group, groupGone bool, now time.Time) Report {
	now = now.UTC()
	rep := Report{
		ReportVersion: ReportVersion, Generated: now, Title: reportTitle(run),
		ID: run.ID, WorkflowID: run.WorkflowID, Kind: run.Kind, Group: run.Group, Project: run.Project,
		Site: run.Site, Backend: run.Backend, Share: run.Share, Mode: run.Mode, State: run.State,
		RequestedBy: run.RequestedBy, StartedBy: run.StartedBy, Created: run.Created.UTC(), Ended: utcPtr(run.Ended),
		Message: run.Message, Flags: nonNil(run.Flags), Touched: nonNil(run.Touched), Children: nonNil(run.Children),
		VerdictReasons: []string{}, Timeline: []TimelineEntry{}, Approvals: []ReportApproval{},
		Pauses: []ReportPause{}, Events: []ReportEvent{}, Checks: []ReportCheck{},
	}
	end := now
	if run.Ended != nil {
		end = run.Ended.UTC()
	}
	rep.DurationSeconds = round(end.Sub(rep.Created).Seconds())
	offset := func(t time.Time) float64 { return round(t.Sub(rep.Created).Seconds()) }

	for _, st := range run.Steps {
		e := TimelineEntry{Step: st.Name, State: st.State, Started: utcPtr(st.Started), Ended: utcPtr(st.Ended),
			Attempts: st.Attempts, Error: st.Error, Note: st.Note, Output: st.Output}
		if st.Started != nil {
			from := offset(*st.Started)
			e.StartOffsetSeconds = &from
			stop := end
			if st.Ended != nil {
				stop = *st.Ended
			}
			if stop.Before(*st.Started) {
				stop = *st.Started
			}
			to, d := offset(stop), round(stop.Sub(*st.Started).Seconds())
			e.EndOffsetSeconds, e.DurationSeconds = &to, &d
		}
		rep.Timeline = append(rep.Timeline, e)
	}
	for _, a := range run.Approvals {
		rep.Approvals = append(rep.Approvals, ReportApproval{By: a.By, At: a.At.UTC(), OffsetSeconds: offset(a.At), Comment: a.Comment})
	}
	for i, e := range run.Events {
		rep.Events = append(rep.Events, ReportEvent{Action: e.Action, By: e.By, At: e.At.UTC(), OffsetSeconds: offset(e.At), Step: e.Step, Comment: e.Comment})
		if e.Action != workflows.UpdatePause {
			continue
		}
		p := ReportPause{By: e.By, From: e.At.UTC(), FromOffsetSeconds: offset(e.At), Comment: e.Comment,
			EndedWith: "run_end", ToOffsetSeconds: offset(end), StepWhenRequested: currentStep(run.Steps, e.At)}
		for _, next := range run.Events[i+1:] {
			if next.Action == workflows.UpdateResume || next.Action == workflows.UpdateAbort {
				p.To, p.ToOffsetSeconds = utcPtr(&next.At), offset(next.At)
				p.EndedWith, p.EndedBy, p.ResumeComment = next.Action, next.By, next.Comment
				break
			}
		}
		rep.Pauses = append(rep.Pauses, p)
	}
	for _, c := range run.Checks {
		result := "passed"
		if !c.Passed {
			result = "failed"
		}
		rep.Checks = append(rep.Checks, ReportCheck{Name: c.Name, Passed: c.Passed, Result: result, Detail: c.Detail})
	}

	o := &rep.Objectives
	o.WritesLost, o.WritesDiscarded = run.WritesLost, run.WritesDiscarded
	o.RPO.AchievedSeconds, o.RTO.AchievedSeconds = run.RPOSeconds, run.RTOSeconds
	switch {
	case group != nil:
		o.Source = fmt.Sprintf("group %s as of %s", group.Name, now.Format(time.RFC3339))
		if group.RPOSeconds > 0 {
			o.RPO.ObjectiveSeconds = &group.RPOSeconds
		}
		if group.RTOSeconds > 0 {
			o.RTO.ObjectiveSeconds = &group.RTOSeconds
		}
	case groupGone:
		o.Source = fmt.Sprintf("group %s no longer exists: no objectives to hold the run against", run.Group)
	default:
		o.Source = "the run has no group: no objectives"
	}
	for _, obj := range []*ReportObjective{&o.RPO, &o.RTO} {
		if obj.ObjectiveSeconds != nil && obj.AchievedSeconds != nil {
			met := *obj.AchievedSeconds <= float64(*obj.ObjectiveSeconds)
			obj.Met = &met
		}
	}

	rep.Verdict, rep.VerdictReasons = verdict(run, rep)
	return rep
}

// verdict says whether the run did what it was for, and why not.
func verdict(run ferry.Run, rep Report) (string, []string) {
	if !ferry.RunEnded(run.State) {
		return VerdictInProgress, []string{fmt.Sprintf("the run has not ended: it is %s", run.State)}
	}
	reasons := []string{}
	if run.State != ferry.RunCompleted {
		r := "the run ended " + run.State
		if run.Message != "" {
			r += ": " + oneLine(run.Message)
		}
		reasons = append(reasons, r)
	}
	for _, c := range rep.Checks {
		if !c.Passed {
			reasons = append(reasons, joinNonEmpty("check "+c.Name+" failed", oneLine(c.Detail)))
		}
	}
	o := rep.Objectives
	if o.RPO.Met != nil && !*o.RPO.Met {
		reasons = append(reasons, fmt.Sprintf("RPO %s exceeds the objective of %d s", seconds(o.RPO.AchievedSeconds), *o.RPO.ObjectiveSeconds))
	}
	if o.RTO.Met != nil && !*o.RTO.Met {
		reasons = append(reasons, fmt.Sprintf("RTO %s exceeds the objective of %d s", seconds(o.RTO.AchievedSeconds), *o.RTO.ObjectiveSeconds))
	}
	for _, c := range run.Children {
		if c.State != ferry.RunCompleted {
			reasons = append(reasons, fmt.Sprintf("group %s ended %s", c.Group, c.State))
		}
	}
	if len(reasons) > 0 {
		return VerdictFailed, reasons
	}
	return VerdictPassed, reasons
}

// currentStep names the step that was running at t, if any.
func currentStep(steps []ferry.Step, t time.Time) string {
	for _, st := range steps {
		if st.Started != nil && !st.Started.After(t) && (st.Ended == nil || st.Ended.After(t)) {
			return st.Name
		}
	}
	return ""
}

func reportTitle(run ferry.Run) string {
	title := "Ferry " + run.Kind
	switch {
	case run.Group != "":
		title += " of group " + run.Group
	case run.Backend != "":
		title += " of backend " + run.Backend
	case run.Site != "":
		title += " of site " + run.Site
	}
	return title
}

// Report formats, by ?format= and by Accept.
const (
	formatJSON     = "json"
	formatMarkdown = "markdown"
	formatHTML     = "html"
)

var reportTypes = map[string]string{
	formatJSON:     "application/json",
	formatMarkdown: "text/markdown; charset=utf-8",
	formatHTML:     "text/html; charset=utf-8",
}

// formatError is a report format the API does not make: the problem names
// where it came from (the format query parameter, or the Accept header).
type formatError struct {
	status int
	field  string
	detail string
}

// reportFormat picks the report's format: ?format= wins; then the Accept
// header's most preferred type the API makes; JSON when neither says.
func reportFormat(r *http.Request) (string, *formatError) {
	if q := r.URL.Query(); q.Has("format") {
		f := strings.ToLower(strings.TrimSpace(q.Get("format")))
		switch f {
		case "md":
			f = formatMarkdown
		case "htm":
			f = formatHTML
		}
		if _, ok := reportTypes[f]; !ok {
			return "", &formatError{http.StatusBadRequest, "format",
				fmt.Sprintf("format must be json, markdown or html, not %q", q.Get("format"))}
		}
		return f, nil
	}
	accept := strings.TrimSpace(strings.Join(r.Header.Values("Accept"), ","))
	if accept == "" {
		return formatJSON, nil
	}
	type choice struct {
		format string
		q      float64
		order  int
	}
	var choices []choice
	for i, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		if q <= 0 {
			continue
		}
		var f string
		switch mt {
		case "application/json", "application/*", "*/*":
			f = formatJSON
		case "text/markdown", "text/x-markdown":
			f = formatMarkdown
		case "text/html", "application/xhtml+xml":
			f = formatHTML
		case "text/*":
			f = formatMarkdown
		default:
			continue
		}
		choices = append(choices, choice{f, q, i})
	}
	if len(choices) == 0 {
		return "", &formatError{http.StatusNotAcceptable, "",
			fmt.Sprintf("the report is made as application/json, text/markdown or text/html, none of which Accept %q allows; or use ?format=json|markdown|html", accept)}
	}
	sort.SliceStable(choices, func(i, j int) bool { return choices[i].q > choices[j].q })
	return choices[0].format, nil
}

// runReport answers GET /v1/runs/{id}/report in the format asked for.
func (s *server) runReport(w http.ResponseWriter, r *http.Request) {
	format, ferr := reportFormat(r)
	if ferr != nil {
		title := "Bad request"
		if ferr.status == http.StatusNotAcceptable {
			title = "Not acceptable"
		}
		writeProblem(w, problem{Type: "about:blank", Title: title, Status: ferr.status, Detail: ferr.detail, Field: ferr.field})
		return
	}
	run, err := s.runByID(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	group, gone, err := s.reportGroup(r.Context(), run)
	if err != nil {
		s.error(w, r, err)
		return
	}
	rep := buildReport(run, group, gone, time.Now())
	w.Header().Set("Vary", "Accept")
	switch format {
	case formatJSON:
		writeJSON(w, http.StatusOK, rep)
		return
	case formatMarkdown:
		w.Header().Set("Content-Type", reportTypes[formatMarkdown])
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(markdownReport(rep)))
	case formatHTML:
		page, err := htmlReport(rep)
		if err != nil {
			s.error(w, r, fmt.Errorf("render report of run %s: %w", run.ID, err))
			return
		}
		w.Header().Set("Content-Type", reportTypes[formatHTML])
		// The page is self-contained: it loads nothing, runs nothing.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(page)
	}
}

// reportGroup reads the run's group for its objectives; gone reports a
// group that no longer exists.
func (s *server) reportGroup(ctx context.Context, run ferry.Run) (*ferry.Group, bool, error) {
	if run.Group == "" {
		return nil, false, nil
	}
	g, err := s.Store.GetGroup(ctx, run.Group)
	switch {
	case ferry.ErrorCode(err) == ferry.ENotFound:
		return nil, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("read group %s for the report of run %s: %w", run.Group, run.ID, err)
	}
	return &g, false, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}

// round keeps a millisecond: offsets and durations read as the clock did.
func round(v float64) float64 { return float64(int64(v*1000+0.5*sign(v))) / 1000 }

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}
