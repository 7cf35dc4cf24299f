package bench

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// Actions counts what Temporal did for workflow executions, read from
// their histories.
type Actions struct {
	Workflows     int `json:"workflows"`
	WorkflowTasks int `json:"workflow_tasks"` // every workflow task started, failed ones too
	ActivityTasks int `json:"activity_tasks"` // every activity attempt
	Events        int `json:"events"`
}

// Add sums two counts.
func (a Actions) Add(b Actions) Actions {
	return Actions{a.Workflows + b.Workflows, a.WorkflowTasks + b.WorkflowTasks, a.ActivityTasks + b.ActivityTasks, a.Events + b.Events}
}

// Count counts one execution's history. An activity's started event is
// written once, for its last attempt, and carries the attempt number: the
// attempts before it count too.
func Count(events []*historypb.HistoryEvent) Actions {
	a := Actions{Workflows: 1, Events: len(events)}
	for _, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			a.WorkflowTasks++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a.ActivityTasks += max(int(e.GetActivityTaskStartedEventAttributes().GetAttempt()), 1)
		}
	}
	return a
}

// Stages are the activities a history scheduled, as the sizes of the
// groups one workflow task scheduled together: [1 1 2 1] is one activity,
// another, two at once, one more. It is the fan-out the floor reproduces.
func Stages(events []*historypb.HistoryEvent) []int {
	var out []int
	last := int64(-1)
	for _, e := range events {
		if e.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			continue
		}
		by := e.GetActivityTaskScheduledEventAttributes().GetWorkflowTaskCompletedEventId()
		if by == last && len(out) > 0 {
			out[len(out)-1]++
			continue
		}
		out = append(out, 1)
		last = by
	}
	return out
}

// ParentShape splits a parent's activities around its children: the
// stages before the first child starts, those after the last child
// closed, and the activities it ran per child in between (rounded).
func ParentShape(events []*historypb.HistoryEvent) (pre []int, perChild int, post []int) {
	first, lastClose := -1, -1
	children := 0
	for i, e := range events {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			if first < 0 {
				first = i
			}
			children++
		case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
			enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
			lastClose = i
		}
	}
	if first < 0 {
		return Stages(events), 0, nil
	}
	pre = Stages(events[:first])
	post = Stages(events[lastClose+1:])
	middle := 0
	for _, n := range Stages(events[first : lastClose+1]) {
		middle += n
	}
	perChild = (middle + children/2) / children
	return pre, perChild, post
}

// History reads a whole execution's history.
func History(ctx context.Context, c client.Client, workflowID, runID string) ([]*historypb.HistoryEvent, error) {
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s/%s: %w", workflowID, runID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Span is the time from a history's first event to its last: a closed
// execution's wall time as the server saw it.
func Span(events []*historypb.HistoryEvent) (startNanos, endNanos int64) {
	if len(events) == 0 {
		return 0, 0
	}
	return events[0].GetEventTime().AsTime().UnixNano(), events[len(events)-1].GetEventTime().AsTime().UnixNano()
}
