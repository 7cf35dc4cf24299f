package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tlog "go.temporal.io/sdk/log"

	"github.com/ferrydr/ferry/telemetry"
)

func jsonLines(t *testing.T, b fmt.Stringer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// A context's fields are on every line logged with it, once, and a field
// added later by a handler reaches the lines its callers log afterwards.
func TestLogFieldsFromContext(t *testing.T) {
	var b bytes.Buffer
	logger := telemetry.NewLogger(&b, "json", slog.LevelDebug)
	ctx := telemetry.WithLogAttrs(context.Background(), slog.String("request_id", "req-1"))
	inner := context.WithValue(ctx, struct{}{}, 1) // a handler's own context
	logger.InfoContext(inner, "handler line")
	telemetry.AddLogAttrs(inner, slog.String("run_id", "run-9"), slog.String("group", "shop"))
	logger.InfoContext(ctx, "closing line", "request_id", "req-1")
	logger.Info("no context")
	child := telemetry.WithLogAttrs(ctx, slog.String("group", "crm"))
	logger.With("group", "explicit").InfoContext(child, "explicit wins")

	lines := jsonLines(t, &b)
	require.Len(t, lines, 4)
	require.Equal(t, "req-1", lines[0]["request_id"])
	require.NotContains(t, lines[0], "run_id")
	require.Equal(t, "req-1", lines[1]["request_id"])
	require.Equal(t, "run-9", lines[1]["run_id"])
	require.Equal(t, "shop", lines[1]["group"])
	require.Equal(t, 1, strings.Count(strings.Split(b.String(), "\n")[1], `"request_id"`), "never twice")
	require.NotContains(t, lines[2], "request_id")
	require.Equal(t, "explicit", lines[3]["group"])
	require.Equal(t, "run-9", lines[3]["run_id"], "a child keeps its parent's fields")
	require.Equal(t, 1, strings.Count(strings.Split(b.String(), "\n")[3], `"group"`))
	require.Equal(t, []slog.Attr{slog.String("request_id", "req-1"), slog.String("run_id", "run-9"), slog.String("group", "shop")}, telemetry.LogAttrs(ctx))
}

// The span of the context names its trace on the line.
func TestLogTraceIDs(t *testing.T) {
	var b bytes.Buffer
	logger := telemetry.NewLogger(&b, "text", slog.LevelInfo)
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	logger.InfoContext(ctx, "traced")
	span.End()
	line := b.String()
	require.Contains(t, line, "trace_id="+span.SpanContext().TraceID().String())
	require.Contains(t, line, "span_id="+span.SpanContext().SpanID().String())
}

// The Temporal SDK's fields are named as Ferry's, in With and on the line.
func TestLogRenamesSDKFields(t *testing.T) {
	var b bytes.Buffer
	logger := tlog.NewStructuredLogger(telemetry.NewLogger(&b, "json", slog.LevelInfo))
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	tlog.With(logger, "WorkflowID", "wf-1", "RunID", "run-1", "TraceID", span.SpanContext().TraceID()).
		Warn("Activity error.", "ActivityType", "Fence", "Error", "boom")
	lines := jsonLines(t, &b)
	require.Len(t, lines, 1)
	for k, v := range map[string]string{
		"workflow_id": "wf-1", "run_id": "run-1", "activity_type": "Fence", "error": "boom",
		"trace_id": span.SpanContext().TraceID().String(),
	} {
		require.Equal(t, v, lines[0][k], k)
	}
	for _, k := range []string{"WorkflowID", "RunID", "ActivityType", "Error", "TraceID"} {
		require.NotContains(t, lines[0], k)
	}
}

// A logger inside a group keeps the context's fields out of it rather
// than nesting them.
func TestLogGroupedLoggerAddsNothing(t *testing.T) {
	var b bytes.Buffer
	logger := telemetry.NewLogger(&b, "json", slog.LevelInfo).WithGroup("g")
	ctx := telemetry.WithLogAttrs(context.Background(), slog.String("request_id", "req-1"))
	logger.InfoContext(ctx, "grouped", "k", "v")
	lines := jsonLines(t, &b)
	require.Equal(t, map[string]any{"k": "v"}, lines[0]["g"])
	require.NotContains(t, b.String(), "req-1")
}
