package telemetry_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/internal/syncbuf"
	"github.com/ferrydr/ferry/telemetry"
	"github.com/ferrydr/ferry/workflows"
)

func logsWorkflow(ctx workflow.Context) error {
	workflow.GetLogger(ctx).Info("workflow says hello")
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 2, InitialInterval: 10 * time.Millisecond},
	})
	return workflow.ExecuteActivity(ctx, "LogsActivity").Get(ctx, nil)
}

// logsActivity fails its first attempt, so the SDK logs a line of its own
// about the activity, which no interceptor sees.
func logsActivity(ctx context.Context) error {
	activity.GetLogger(ctx).Info("activity says hello")
	if activity.GetInfo(ctx).Attempt == 1 {
		return temporal.NewApplicationError("first attempt fails", "Test")
	}
	return nil
}

// On a real Temporal server, the lines a workflow and its activity log
// name the run (run_id, workflow_id) and its group, and so do the SDK's
// own lines about them ("Activity error."). The workflow's and the
// activity's workers are separate workers, as in separate processes: the
// activity's logger learns the group from the activity's header.
func TestWorkflowAndActivityLogsNameTheGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := devserver.Start(t)
	var wfLogs, actLogs syncbuf.Buffer
	dial := func(buf *syncbuf.Buffer) client.Client {
		c, err := client.Dial(client.Options{
			HostPort: srv.HostPort,
			Logger:   tlog.NewStructuredLogger(telemetry.NewLogger(buf, "json", slog.LevelDebug)),
		})
		require.NoError(t, err)
		t.Cleanup(c.Close)
		return c
	}
	wfClient, actClient := dial(&wfLogs), dial(&actLogs)
	// One queue, each worker doing one kind of task: the activity runs
	// away from the workflow's process.
	const tq = "telemetry-logs"
	ww := worker.New(wfClient, tq, worker.Options{
		Interceptors:            []interceptor.WorkerInterceptor{telemetry.WorkerInterceptor()},
		LocalActivityWorkerOnly: true, // polls no activity task
	})
	ww.RegisterWorkflowWithOptions(logsWorkflow, workflow.RegisterOptions{Name: "LogsWorkflow"})
	require.NoError(t, ww.Start())
	t.Cleanup(ww.Stop)
	aw := worker.New(actClient, tq, worker.Options{
		Interceptors:          []interceptor.WorkerInterceptor{telemetry.WorkerInterceptor()},
		DisableWorkflowWorker: true,
	})
	aw.RegisterActivityWithOptions(logsActivity, activity.RegisterOptions{Name: "LogsActivity"})
	require.NoError(t, aw.Start())
	t.Cleanup(aw.Stop)

	run, err := wfClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.GroupWorkflowID("shop") + "-logs", TaskQueue: tq,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchGroup.ValueSet("shop")),
	}, "LogsWorkflow")
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))

	about := func(m map[string]any) bool {
		for _, v := range m {
			if s, ok := v.(string); ok && (s == run.GetID() || s == run.GetRunID()) {
				return true
			}
		}
		return false
	}
	check := func(name string, buf *syncbuf.Buffer, want ...string) {
		t.Helper()
		seen := map[string]bool{}
		n := 0
		for _, m := range jsonLines(t, buf) {
			seen[m["msg"].(string)] = true
			if !about(m) {
				continue
			}
			n++
			require.Equal(t, run.GetID(), m["workflow_id"], "%s: %v", name, m)
			require.Equal(t, run.GetRunID(), m["run_id"], "%s: %v", name, m)
			require.Equal(t, "shop", m["group"], "%s: %v", name, m)
		}
		for _, msg := range want {
			require.True(t, seen[msg], "%s logged no %q", name, msg)
		}
		require.NotZero(t, n)
	}
	check("workflow worker", &wfLogs, "workflow says hello")
	check("activity worker", &actLogs, "activity says hello", "Activity error.")
}
