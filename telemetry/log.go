package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger is Ferry's logger: JSON lines (format "json") or logfmt-like
// text (anything else) on w, through LogHandler.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(LogHandler(slog.NewTextHandler(w, opts)))
}

// LogHandler wraps next so that every line also carries:
//   - the attributes put on its context with WithLogAttrs and AddLogAttrs
//     (the API's request_id, and run_id or group once a request is known
//     to be about one);
//   - trace_id and span_id of the context's span, when tracing is on;
//   - the group and the trace of the run, on the Temporal SDK's own lines
//     about a run this process works on (see WorkerInterceptor).
//
// It also names the Temporal SDK's fields as Ferry names its own
// (WorkflowID becomes workflow_id, RunID run_id...), so one query finds a
// run's lines from the API, the workflows and the activities alike. An
// attribute the line already has is never added twice.
func LogHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(*contextHandler); ok {
		return h
	}
	return &contextHandler{next: next}
}

type contextHandler struct {
	next slog.Handler
	// with are the top-level keys the logger's With already holds, and
	// workflowID the workflow it is about, if any.
	with    map[string]bool
	runID   string
	grouped bool
}

func (h *contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	have := make(map[string]bool, len(h.with)+r.NumAttrs()+4)
	for k := range h.with {
		have[k] = true
	}
	runID := h.runID
	r.Attrs(func(a slog.Attr) bool {
		a = rename(a)
		if !h.grouped {
			have[a.Key] = true
			if a.Key == "run_id" {
				runID = a.Value.String()
			}
		}
		out.AddAttrs(a)
		return true
	})
	if h.grouped {
		// Added fields would land inside the logger's group: leave them.
		return h.next.Handle(ctx, out)
	}
	add := func(a slog.Attr) {
		if !have[a.Key] {
			have[a.Key] = true
			out.AddAttrs(a)
		}
	}
	if f := fieldsFrom(ctx); f != nil {
		for _, a := range f.snapshot() {
			add(a)
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		add(slog.String("trace_id", sc.TraceID().String()))
		add(slog.String("span_id", sc.SpanID().String()))
	}
	if runID != "" && (!have["group"] || !have["trace_id"]) {
		f := runs.get(runID)
		if f.group != "" {
			add(slog.String("group", f.group))
		}
		if f.traceID != "" {
			add(slog.String("trace_id", f.traceID))
		}
	}
	return h.next.Handle(ctx, out)
}

func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	renamed := make([]slog.Attr, len(attrs))
	if !h.grouped {
		c.with = make(map[string]bool, len(h.with)+len(attrs))
		for k := range h.with {
			c.with[k] = true
		}
	}
	for i, a := range attrs {
		renamed[i] = rename(a)
		if !h.grouped {
			c.with[renamed[i].Key] = true
			if renamed[i].Key == "run_id" {
				c.runID = renamed[i].Value.String()
			}
		}
	}
	c.next = h.next.WithAttrs(renamed)
	return &c
}

func (h *contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.grouped = true
	c.next = h.next.WithGroup(name)
	return &c
}

// sdkNames are the Temporal SDK's field names and Ferry's for the same.
var sdkNames = map[string]string{
	"Namespace":    "namespace",
	"TaskQueue":    "task_queue",
	"WorkerID":     "worker_id",
	"WorkflowType": "workflow_type",
	"WorkflowID":   "workflow_id",
	"RunID":        "run_id",
	"ActivityID":   "activity_id",
	"ActivityType": "activity_type",
	"Attempt":      "attempt",
	"Error":        "error",
	"TraceID":      "trace_id",
	"SpanID":       "span_id",
}

func rename(a slog.Attr) slog.Attr {
	name, ok := sdkNames[a.Key]
	if !ok {
		return a
	}
	a.Key = name
	// The tracing interceptor logs trace.TraceID and trace.SpanID values:
	// written as their hex strings, as on the API's lines.
	if s, ok := a.Value.Any().(fmt.Stringer); ok && a.Value.Kind() == slog.KindAny && (name == "trace_id" || name == "span_id") {
		a.Value = slog.StringValue(s.String())
	}
	return a
}

// fields are a context's log attributes. They are shared by the contexts
// derived from the one WithLogAttrs made, so a handler that learns which
// run a request is about (AddLogAttrs) names it on the lines its callers
// log afterwards too, such as the request's closing line.
type fields struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

type fieldsKey struct{}

func fieldsFrom(ctx context.Context) *fields {
	if ctx == nil {
		return nil
	}
	f, _ := ctx.Value(fieldsKey{}).(*fields)
	return f
}

func (f *fields) snapshot() []slog.Attr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slog.Attr(nil), f.attrs...)
}

func (f *fields) set(attrs []slog.Attr) {
	f.mu.Lock()
	defer f.mu.Unlock()
next:
	for _, a := range attrs {
		for i := range f.attrs {
			if f.attrs[i].Key == a.Key {
				f.attrs[i] = a
				continue next
			}
		}
		f.attrs = append(f.attrs, a)
	}
}

// WithLogAttrs returns a context whose log lines (logged with a
// ...Context method through LogHandler) carry attrs, and those its parent
// carries.
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	f := &fields{}
	if parent := fieldsFrom(ctx); parent != nil {
		f.attrs = parent.snapshot()
	}
	f.set(attrs)
	return context.WithValue(ctx, fieldsKey{}, f)
}

// AddLogAttrs adds attrs to the fields of ctx's WithLogAttrs, replacing
// any of the same key, for every context that shares them. Without
// WithLogAttrs before, it does nothing.
func AddLogAttrs(ctx context.Context, attrs ...slog.Attr) {
	if f := fieldsFrom(ctx); f != nil {
		f.set(attrs)
	}
}

// LogAttrs are the fields of ctx's WithLogAttrs and AddLogAttrs.
func LogAttrs(ctx context.Context) []slog.Attr {
	if f := fieldsFrom(ctx); f != nil {
		return f.snapshot()
	}
	return nil
}
