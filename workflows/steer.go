package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
)

// errAborted ends a run on an operator's abort.
var errAborted = errors.New("aborted by operator")

// Operator decisions on a step that failed after the point of no return.
const (
	decideRetry = "retry"
	decideSkip  = "skip"
	decideAbort = "abort"
)

// ErrRejected is the application error type of a refused steering update;
// the API maps it to 409.
const ErrRejected = "rejected"

// steering is the operator-facing state every run shares: its progress
// record, the approval gate, pause, and the decision on a failed step. The
// query and the updates read and write it; the run's body waits on it.
type steering struct {
	run ferry.Run

	approved       bool
	pauseRequested bool
	abortRequested bool
	failedStep     string // set while paused on a failed step
	// finishing: the run is recording its end; steering has nothing left
	// to act on.
	finishing bool
	decision  string
	// cancelStep cancels the step in flight, so that an abort does not wait
	// for a long boot to finish. Nil while no cancellable step runs.
	cancelStep workflow.CancelFunc
}

func rejected(format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), ErrRejected)
}

// setup registers the progress query and the steering updates. Validators
// refuse what makes no sense in the current state, so the caller learns at
// once whether the request took.
func (s *steering) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (ferry.Run, error) {
		return s.run, nil
	}); err != nil {
		return err
	}
	handlers := []struct {
		name     string
		validate func() error
		apply    func(ctx workflow.Context, r SteerRequest)
	}{
		{UpdateApprove, func() error {
			if s.run.State != ferry.RunWaitingApproval {
				return rejected("run is %s, not waiting for approval", s.run.State)
			}
			return nil
		}, func(ctx workflow.Context, r SteerRequest) {
			s.approved = true
			s.run.Approvals = append(s.run.Approvals, ferry.Approval{By: r.By, At: now(ctx), Comment: r.Comment})
		}},
		{UpdatePause, func() error {
			switch {
			case ferry.RunEnded(s.run.State) || s.finishing:
				return rejected("run has ended (%s)", s.run.State)
			case s.pauseRequested || s.failedStep != "":
				return rejected("run is already paused")
			case s.run.State == ferry.RunWaitingApproval:
				return rejected("run is waiting for approval; approve or abort it")
			}
			return nil
		}, func(ctx workflow.Context, r SteerRequest) { s.pauseRequested = true }},
		{UpdateResume, func() error {
			if !s.pauseRequested {
				if s.failedStep != "" {
					return rejected("step %s failed: retry, skip or abort it", s.failedStep)
				}
				return rejected("run is not paused")
			}
			return nil
		}, func(ctx workflow.Context, r SteerRequest) { s.pauseRequested = false }},
		{UpdateRetry, s.validateDecision, func(ctx workflow.Context, r SteerRequest) { s.decision = decideRetry }},
		{UpdateSkip, s.validateDecision, func(ctx workflow.Context, r SteerRequest) { s.decision = decideSkip }},
		{UpdateAbort, func() error {
			if ferry.RunEnded(s.run.State) || s.finishing {
				return rejected("run has ended (%s)", s.run.State)
			}
			if s.abortRequested {
				return rejected("abort already requested")
			}
			return nil
		}, func(ctx workflow.Context, r SteerRequest) {
			s.abortRequested = true
			s.decision = decideAbort
			if s.cancelStep != nil {
				s.cancelStep()
			}
		}},
	}
	for _, h := range handlers {
		h := h
		err := workflow.SetUpdateHandlerWithOptions(ctx, h.name,
			func(ctx workflow.Context, r SteerRequest) (ferry.Run, error) {
				if r.By == "" {
					r.By = "operator"
				}
				s.event(ctx, h.name, r)
				h.apply(ctx, r)
				return s.run, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r SteerRequest) error { return h.validate() }},
		)
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *steering) validateDecision() error {
	if s.failedStep == "" {
		return rejected("no failed step is waiting for a decision (run is %s)", s.run.State)
	}
	return nil
}

func (s *steering) event(ctx workflow.Context, action string, r SteerRequest) {
	s.run.Events = append(s.run.Events, ferry.Event{Action: action, By: r.By, At: now(ctx), Step: s.failedStep, Comment: r.Comment})
}

// awaitApproval holds the run until it is approved or aborted.
func (s *steering) awaitApproval(ctx workflow.Context) error {
	s.run.State = ferry.RunWaitingApproval
	if err := workflow.Await(ctx, func() bool { return s.approved || s.abortRequested }); err != nil {
		return err
	}
	if s.abortRequested {
		return errAborted
	}
	s.run.State = ferry.RunRunning
	return nil
}

// checkpoint is a step boundary: it honours a pause and an abort.
func (s *steering) checkpoint(ctx workflow.Context) error {
	if s.pauseRequested && !s.abortRequested {
		s.run.State = ferry.RunPaused
		s.run.Message = "paused by operator: resume or abort"
		if err := workflow.Await(ctx, func() bool { return !s.pauseRequested || s.abortRequested }); err != nil {
			return err
		}
		s.run.Message = ""
		s.run.State = ferry.RunRunning
	}
	if s.abortRequested {
		return errAborted
	}
	return nil
}

// awaitDecision pauses the run on a failed step until an operator decides.
func (s *steering) awaitDecision(ctx workflow.Context, step string, cause error) (string, error) {
	s.failedStep = step
	s.decision = ""
	if s.abortRequested {
		s.decision = decideAbort
	}
	s.run.State = ferry.RunPaused
	s.run.Message = fmt.Sprintf("step %s failed: %s; retry, skip or abort", step, message(cause))
	if err := workflow.Await(ctx, func() bool { return s.decision != "" }); err != nil {
		return "", err
	}
	d := s.decision
	s.failedStep, s.decision, s.run.Message = "", "", ""
	s.run.State = ferry.RunRunning
	return d, nil
}

// step returns the named step of the run, adding it if missing.
func (s *steering) step(name string) *ferry.Step {
	for i := range s.run.Steps {
		if s.run.Steps[i].Name == name {
			return &s.run.Steps[i]
		}
	}
	s.run.Steps = append(s.run.Steps, ferry.Step{Name: name, State: ferry.StepPending})
	return &s.run.Steps[len(s.run.Steps)-1]
}

// plan lists the steps a run will take, so progress shows the whole runbook
// from the start.
func (s *steering) expect(names ...string) {
	for _, n := range names {
		s.step(n)
	}
}

func (s *steering) hasFlag(f string) bool {
	for _, have := range s.run.Flags {
		if have == f {
			return true
		}
	}
	return false
}

func (s *steering) flag(f string) {
	for _, have := range s.run.Flags {
		if have == f {
			return
		}
	}
	s.run.Flags = append(s.run.Flags, f)
}

func now(ctx workflow.Context) time.Time { return workflow.Now(ctx).UTC() }

func timePtr(t time.Time) *time.Time { return &t }

// message is an error's text without Temporal's wrapping noise.
func message(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range j.Unwrap() {
			if e != nil {
				parts = append(parts, message(e))
			}
		}
		return strings.Join(parts, "; ")
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return "canceled"
	}
	return err.Error()
}
