package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ferrydr/ferry/workflows"
)

// historyDir keeps recorded histories of real runs. Replaying them against
// the current code fails when a change would break a running workflow
// (invariant 8); such a change needs workflow.GetVersion (docs/failover.md).
const historyDir = "testdata/histories"

// recordHistory saves a finished run's history as testdata when
// FERRY_RECORD_HISTORIES=1, to refresh the recordings after an intended,
// versioned change.
func recordHistory(t *testing.T, run client.WorkflowRun, name string) {
	t.Helper()
	if os.Getenv("FERRY_RECORD_HISTORIES") != "1" {
		return
	}
	var h historypb.History
	it := temporalClient.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(historyDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(historyDir, name+".json"), b, 0o644))
}

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(historyDir, "*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 5, "recorded histories are missing from %s", historyDir)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			for _, wf := range workflows.All() {
				r.RegisterWorkflowWithOptions(wf.Func, workflow.RegisterOptions{Name: wf.Name})
			}
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
