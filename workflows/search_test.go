package workflows_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// startIndexed starts a run as the API does: under the group's workflow id,
// with the group, site and kind search attributes set by the starter.
func (e *env) startIndexed(name, kind, group, site string, in any) client.WorkflowRun {
	e.t.Helper()
	run, err := temporalClient.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID:                       workflows.GroupWorkflowID(group),
		TaskQueue:                e.tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchKind.ValueSet(kind), workflows.SearchGroup.ValueSet(group), workflows.SearchSite.ValueSet(site)),
	}, name, in)
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = temporalClient.TerminateWorkflow(e.ctx, run.GetID(), run.GetRunID(), "test ended")
	})
	return run
}

// listed reports whether the visibility query finds the run.
func (e *env) listed(query, runID string) bool {
	e.t.Helper()
	var token []byte
	for {
		resp, err := temporalClient.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: query, NextPageToken: token,
		})
		require.NoError(e.t, err, "query %s", query)
		for _, ex := range resp.GetExecutions() {
			if ex.GetExecution().GetRunId() == runID {
				return true
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return false
		}
	}
}

// requireListed polls the query until it finds the run: visibility is
// eventually consistent.
func (e *env) requireListed(query, runID string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.listed(query, runID) }, 30*time.Second, 100*time.Millisecond,
		"run %s never listed by %s", runID, query)
}

func TestRunStateSearchAttributeFindsCompletedRun(t *testing.T) {
	e := newEnv(t)
	run := e.startIndexed(workflows.FailoverWorkflowName, ferry.KindFailover, "shop", "site-b",
		workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned, MaxAttempts: 2})
	r := e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	recordHistory(t, run, "search-state-planned")

	e.requireListed(`FerryGroup="shop" AND FerryRunState="completed"`, run.GetRunID())
	e.requireListed(`FerryRunKind="failover" AND FerrySite="site-b" AND FerryRunState="completed"`, run.GetRunID())
	// One value at a time: the completed run no longer counts as running.
	require.False(t, e.listed(`FerryGroup="shop" AND FerryRunState="running"`, run.GetRunID()))
}

func TestRunStateSearchAttributeFollowsPauseAndResume(t *testing.T) {
	e := newEnv(t)
	run := e.startIndexed(workflows.DrillWorkflowName, ferry.KindDrill, "shop", "site-b",
		workflows.DrillInput{Group: "shop", HoldSeconds: 600, MaxAttempts: 2})
	e.waitState(run, ferry.RunPaused)

	paused := `FerryRunKind="drill" AND FerryRunState="paused"`
	e.requireListed(paused, run.GetRunID())
	e.requireListed(fmt.Sprintf(`FerryGroup="shop" AND FerryRunState="paused" AND WorkflowId=%q`, run.GetID()), run.GetRunID())

	require.NoError(t, e.steer(run, workflows.UpdateResume, "uma"))
	r := e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	e.requireListed(`FerryRunKind="drill" AND FerryRunState="completed"`, run.GetRunID())
	require.False(t, e.listed(paused, run.GetRunID()), "a resumed drill is no longer listed as paused")
}
