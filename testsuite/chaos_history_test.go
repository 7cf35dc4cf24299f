package testsuite

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// scheduledActivity is one ActivityTaskScheduled event of a run's history.
type scheduledActivity struct {
	EventID int64
	Type    string
}

// history reads a workflow execution's events so far (no waiting).
func (cs *chaosSystem) history(ctx context.Context, wfID, runID string) ([]*historypb.HistoryEvent, error) {
	it := cs.tc.GetWorkflowHistory(ctx, wfID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// scheduledActivities lists a finished (or running) execution's
// ActivityTaskScheduled events in order: the kill points of its run.
func (cs *chaosSystem) scheduledActivities(ctx context.Context, wfID, runID string) ([]scheduledActivity, error) {
	evs, err := cs.history(ctx, wfID, runID)
	if err != nil {
		return nil, err
	}
	var out []scheduledActivity
	for _, ev := range evs {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			out = append(out, scheduledActivity{EventID: ev.GetEventId(), Type: a.GetActivityType().GetName()})
		}
	}
	return out, nil
}

// watch long-polls an execution's history and calls fn on each event as it
// is written, until fn returns true or the execution closes (an error).
// It survives a Temporal restart: the poll is reopened and events already
// seen are skipped.
func (cs *chaosSystem) watch(ctx context.Context, wfID, runID string, fn func(*historypb.HistoryEvent) bool) error {
	var seen int64
	for ctx.Err() == nil {
		it := cs.tc.GetWorkflowHistory(ctx, wfID, runID, true, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		failed := false
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				failed = true
				break
			}
			if ev.GetEventId() <= seen {
				continue
			}
			seen = ev.GetEventId()
			if fn(ev) {
				return nil
			}
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
				enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
				enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
				return fmt.Errorf("workflow %s run %s closed (%s) before the awaited event", wfID, runID, ev.GetEventType())
			}
		}
		if !failed {
			// The iterator ends when the workflow closes; the close event
			// was handled above, so this is a poll that gave up.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		time.Sleep(200 * time.Millisecond) // the server is restarting
	}
	return ctx.Err()
}

// awaitScheduled returns once the execution's nth ActivityTaskScheduled
// event is written.
func (cs *chaosSystem) awaitScheduled(ctx context.Context, wfID, runID string, n int) (scheduledActivity, error) {
	var got scheduledActivity
	count := 0
	err := cs.watch(ctx, wfID, runID, func(ev *historypb.HistoryEvent) bool {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			count++
			if count == n {
				got = scheduledActivity{EventID: ev.GetEventId(), Type: a.GetActivityType().GetName()}
				return true
			}
		}
		return false
	})
	if err != nil {
		return got, fmt.Errorf("awaiting activity #%d (saw %d): %w", n, count, err)
	}
	return got, nil
}

// childRun returns the run id of the child workflow wfID that the parent
// execution starts, once it has started.
func (cs *chaosSystem) childRun(ctx context.Context, parentWF, parentRun, wfID string) (string, error) {
	var runID string
	err := cs.watch(ctx, parentWF, parentRun, func(ev *historypb.HistoryEvent) bool {
		if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil && a.GetWorkflowExecution().GetWorkflowId() == wfID {
			runID = a.GetWorkflowExecution().GetRunId()
			return true
		}
		return false
	})
	return runID, err
}

// activityClosed says whether the activity of a scheduled event has
// completed, failed or timed out in the history so far: read right after a
// kill, it tells a kill between steps from one inside a step.
func (cs *chaosSystem) activityClosed(ctx context.Context, wfID, runID string, scheduled int64) (bool, error) {
	evs, err := cs.history(ctx, wfID, runID)
	if err != nil {
		return false, err
	}
	for _, ev := range evs {
		switch {
		case ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId() == scheduled,
			ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId() == scheduled,
			ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId() == scheduled:
			return true, nil
		}
	}
	return false, nil
}

// awaitActivity returns once the execution schedules its occurrence-th
// activity of type activity.
func (cs *chaosSystem) awaitActivity(ctx context.Context, wfID, runID, activity string, occurrence int) (scheduledActivity, error) {
	var got scheduledActivity
	seen := 0
	err := cs.watch(ctx, wfID, runID, func(ev *historypb.HistoryEvent) bool {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activity {
			seen++
			if seen == occurrence {
				got = scheduledActivity{EventID: ev.GetEventId(), Type: activity}
				return true
			}
		}
		return false
	})
	if err != nil {
		return got, fmt.Errorf("awaiting %s #%d: %w", activity, occurrence, err)
	}
	return got, nil
}

// awaitCompleted returns once the activity of a scheduled event has
// completed.
func (cs *chaosSystem) awaitCompleted(ctx context.Context, wfID, runID string, scheduled int64) error {
	return cs.watch(ctx, wfID, runID, func(ev *historypb.HistoryEvent) bool {
		return ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId() == scheduled
	})
}
