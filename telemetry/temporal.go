package telemetry

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry/workflows"
)

// groupHeader carries a run's group from a workflow to its activities, so
// an activity's logger names it even on a worker that never ran the
// workflow. Headers are not commands: adding one changes no history.
const groupHeader = "ferry-group"

// WorkerInterceptor puts the group of the run on the loggers of its
// workflows (workflow.GetLogger) and activities (activity.GetLogger). The
// SDK's loggers already name the workflow id, run id and type. The group is
// the workflow's FerryGroup search attribute, which every run of one group
// has from its start; a run of many groups (an evacuation) logs without
// one, its per-group children with theirs.
//
// It only reads and wraps loggers: no command, no side effect in workflow
// code, so replay is unaffected.
func WorkerInterceptor() interceptor.WorkerInterceptor { return &workerInterceptor{} }

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
}

func (*workerInterceptor) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &workflowInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}}
}

func (*workerInterceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}}
}

type workflowInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	out *workflowOutbound
}

func (w *workflowInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	w.out = &workflowOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}}
	return w.Next.Init(w.out)
}

func (w *workflowInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	// The tracing interceptor, when on, runs before this one: its span is
	// the run's trace, which the SDK's own lines about the run then name.
	if span, ok := temporalotel.SpanFromWorkflowContext(ctx); ok && span.SpanContext().IsValid() {
		runs.put(w.out.Next.GetInfo(ctx).WorkflowExecution.RunID, runFields{traceID: span.SpanContext().TraceID().String()})
	}
	w.out.groupOf(ctx)
	return w.Next.ExecuteWorkflow(ctx, in)
}

type workflowOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	once  bool
	group string
}

// groupOf reads the group once per workflow execution in this worker's
// cache, and tells the process's log handler (LogHandler) about it.
func (w *workflowOutbound) groupOf(ctx workflow.Context) string {
	if !w.once {
		w.once = true
		if g, ok := w.Next.GetTypedSearchAttributes(ctx).GetKeyword(workflows.SearchGroup); ok {
			w.group = g
			runs.put(w.Next.GetInfo(ctx).WorkflowExecution.RunID, runFields{group: g})
		}
	}
	return w.group
}

func (w *workflowOutbound) GetLogger(ctx workflow.Context) log.Logger {
	l := w.Next.GetLogger(ctx)
	if g := w.groupOf(ctx); g != "" {
		return log.With(l, "group", g)
	}
	return l
}

func (w *workflowOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	w.putHeader(ctx)
	return w.Next.ExecuteActivity(ctx, activityType, args...)
}

func (w *workflowOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	w.putHeader(ctx)
	return w.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

func (w *workflowOutbound) putHeader(ctx workflow.Context) {
	g := w.groupOf(ctx)
	header := interceptor.WorkflowHeader(ctx)
	if g == "" || header == nil {
		return
	}
	// The default converter, never the client's (which may seal
	// payloads): the group is no secret and any worker must read it.
	if p, err := converter.GetDefaultDataConverter().ToPayload(g); err == nil {
		header[groupHeader] = p
	}
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	group string
}

func (a *activityInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	return a.Next.Init(&activityOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: outbound}, in: a})
}

func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	var f runFields
	if p := interceptor.Header(ctx)[groupHeader]; p != nil {
		var g string
		if converter.GetDefaultDataConverter().FromPayload(p, &g) == nil && g != "" {
			a.group, f.group = g, g
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		f.traceID = sc.TraceID().String()
	}
	runs.put(activity.GetInfo(ctx).WorkflowExecution.RunID, f)
	return a.Next.ExecuteActivity(ctx, in)
}

type activityOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	in *activityInbound
}

func (a *activityOutbound) GetLogger(ctx context.Context) log.Logger {
	l := a.Next.GetLogger(ctx)
	if a.in.group != "" {
		return log.With(l, "group", a.in.group)
	}
	return l
}

// runs remembers the group and trace of the runs this process has worked
// on lately, by run id, for the SDK's own log lines about them (a failed
// activity, a scheduled one), which no interceptor sees. Bounded: the
// oldest are forgotten first.
var runs = &runCache{max: 4096}

type runFields struct{ group, traceID string }

type runCache struct {
	mu    sync.Mutex
	max   int
	byID  map[string]runFields
	order []string
}

// put merges f into what is known of runID.
func (c *runCache) put(runID string, f runFields) {
	if runID == "" || f == (runFields{}) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[string]runFields{}
	}
	cur, ok := c.byID[runID]
	if !ok {
		c.order = append(c.order, runID)
		if len(c.order) > c.max {
			delete(c.byID, c.order[0])
			c.order = c.order[1:]
		}
	}
	if f.group != "" {
		cur.group = f.group
	}
	if f.traceID != "" {
		cur.traceID = f.traceID
	}
	c.byID[runID] = cur
}

func (c *runCache) get(runID string) runFields {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[runID]
}
