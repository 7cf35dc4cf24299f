package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

func TestEvacuatePlanner(t *testing.T) {
	e := newEnv(t, temporalClient(t))
	e.seed("shop-" + suffix())
	before := e.snapshot()
	for _, c := range []struct{ body, field, detail string }{
		{`{"kind":"evacuate"}`, "site", "required"},
		{`{"kind":"evacuate","site":"site-z"}`, "site", `"site-z"`},
		{`{"kind":"evacuate","site":"site-a","group":"g"}`, "group", "scope is a site"},
		{`{"kind":"evacuate","site":"site-a","target":"site-b"}`, "target", "own DR site"},
		{`{"kind":"evacuate","site":"site-a","mode":"hasty"}`, "mode", `"hasty"`},
		{`{"kind":"evacuate","site":"site-a","options":{"concurrency":-1}}`, "options.concurrency", "between 1 and"},
		{`{"kind":"evacuate","site":"site-a","options":{"concurrency":1000}}`, "options.concurrency", "between 1 and"},
	} {
		p := requireProblem(t, e.do("POST", "/v1/runs", c.body), http.StatusUnprocessableEntity, c.field)
		require.Contains(t, p["detail"], c.detail, c.body)
	}
	require.Equal(t, before, e.snapshot(), "refused starts write nothing")

	// No worker polls the queue: the evacuation stays running.
	r := e.do("POST", "/v1/runs", `{"kind":"evacuate","site":"site-a","mode":"unplanned","options":{"concurrency":3},"requested_by":"olga"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var s struct {
		ID         string `json:"id"`
		WorkflowID string `json:"workflow_id"`
		Site       string `json:"site"`
		Mode       string `json:"mode"`
	}
	require.NoError(t, json.Unmarshal(r.body, &s))
	t.Cleanup(func() { _ = e.tc.TerminateWorkflow(context.Background(), s.WorkflowID, s.ID, "test done") })
	require.Equal(t, workflows.EvacuateWorkflowID("site-a"), s.WorkflowID)
	require.Equal(t, "site-a", s.Site)
	require.Equal(t, ferry.ModeUnplanned, s.Mode)

	ctx := context.Background()
	d, err := e.tc.DescribeWorkflowExecution(ctx, s.WorkflowID, s.ID)
	require.NoError(t, err)
	require.Equal(t, workflows.EvacuateWorkflowName, d.GetWorkflowExecutionInfo().GetType().GetName())
	require.Contains(t, d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), "FerrySite")
	it := e.tc.GetWorkflowHistory(ctx, s.WorkflowID, s.ID, false, 0)
	first, err := it.Next()
	require.NoError(t, err)
	var in workflows.EvacuateInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(first.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in))
	require.Equal(t, workflows.EvacuateInput{Site: "site-a", Mode: ferry.ModeUnplanned, Concurrency: 3, RequestedBy: "olga"}, in)

	rec, err := e.store.GetRun(ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, ferry.KindEvacuate, rec.Kind)
	require.Equal(t, "site-a", rec.Site)
	require.Empty(t, rec.Group, "an evacuation holds no group")

	// One evacuation per site at a time.
	requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"evacuate","site":"site-a"}`), http.StatusConflict, "")
}

func TestReplicationShowsMonitorEvents(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("shop")
	at := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, e.store.AddEvents(context.Background(), []ferry.ReplicationEvent{
		{ID: "m/1/db-root@site-b", Group: "shop", Resource: "db-root", Site: "site-b", Backend: "ceph-b",
			Severity: ferry.SeverityWarning, LagSeconds: 130, RPOSeconds: 60, Message: "lag 130s exceeds 2x the RPO of 60s", At: at},
		{ID: "m/2/db-root@site-b", Group: "shop", Resource: "db-root", Site: "site-b", Backend: "ceph-b",
			Severity: ferry.SeverityResolved, LagSeconds: 2, RPOSeconds: 60, Message: "back", At: at.Add(time.Minute)},
	}))
	r := e.do("GET", "/v1/groups/shop/replication", "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var got struct {
		Events []ferry.ReplicationEvent `json:"events"`
	}
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.Len(t, got.Events, 2)
	require.Equal(t, ferry.SeverityResolved, got.Events[0].Severity, "newest first")
	require.Equal(t, ferry.SeverityWarning, got.Events[1].Severity)
	require.Equal(t, "ceph-b", got.Events[1].Backend)
}
