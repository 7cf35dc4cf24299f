package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

type evs []*historypb.HistoryEvent

func (e *evs) add(t enumspb.EventType, set func(*historypb.HistoryEvent)) int64 {
	ev := &historypb.HistoryEvent{EventId: int64(len(*e) + 1), EventType: t}
	if set != nil {
		set(ev)
	}
	*e = append(*e, ev)
	return ev.EventId
}

// task adds a workflow task (scheduled, started, completed) and returns
// the completed event's id.
func (e *evs) task() int64 {
	e.add(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, nil)
	e.add(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, nil)
	return e.add(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, nil)
}

func (e *evs) schedule(by int64, n int) {
	for range n {
		e.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, func(ev *historypb.HistoryEvent) {
			ev.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{
				ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{WorkflowTaskCompletedEventId: by}}
		})
	}
}

func (e *evs) started(attempt int32) {
	e.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{
			ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{Attempt: attempt}}
	})
}

func TestCountAndStages(t *testing.T) {
	var e evs
	e.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, nil)
	e.schedule(e.task(), 1)
	e.started(1)
	e.schedule(e.task(), 3) // three at once
	e.started(1)
	e.started(3) // retried twice before it succeeded
	e.started(1)
	e.schedule(e.task(), 1)
	e.started(1)
	e.task()
	e.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, nil)

	require.Equal(t, []int{1, 3, 1}, Stages(e))
	a := Count(e)
	require.Equal(t, Actions{Workflows: 1, WorkflowTasks: 4, ActivityTasks: 7, Events: len(e)}, a)
	require.Equal(t, Actions{Workflows: 2, WorkflowTasks: 8, ActivityTasks: 14, Events: 2 * len(e)}, a.Add(a))
}

func TestParentShape(t *testing.T) {
	var e evs
	e.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, nil)
	e.schedule(e.task(), 1) // the plan
	by := e.task()
	e.add(enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, nil)
	e.add(enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, nil)
	e.schedule(by, 0)
	e.schedule(e.task(), 2) // one record per child
	e.add(enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, nil)
	e.add(enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED, nil)
	e.schedule(e.task(), 1) // the final record
	pre, per, post := ParentShape(e)
	require.Equal(t, []int{1}, pre)
	require.Equal(t, 1, per)
	require.Equal(t, []int{1}, post)

	// A parent without children is all "pre".
	var flat evs
	flat.schedule(flat.task(), 2)
	pre, per, post = ParentShape(flat)
	require.Equal(t, []int{2}, pre)
	require.Zero(t, per)
	require.Empty(t, post)
}

func TestFloorInputActivities(t *testing.T) {
	in := FloorInput{Pre: []int{1}, PerChild: 1, Post: []int{1}, Children: [][]int{{1, 2}, {1, 2, 1}}}
	require.Equal(t, 1+1+2*1+3+4, in.Activities())
}
