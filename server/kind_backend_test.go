package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

type backendStarted struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Kind       string `json:"kind"`
	Group      string `json:"group"`
	Site       string `json:"site"`
	State      string `json:"state"`
}

// startBackendOK posts a run and returns what the API answered; the workflow is
// terminated when the test ends (no worker polls the queue).
func (e *env) startBackendOK(body string) backendStarted {
	e.t.Helper()
	r := e.do("POST", "/v1/runs", body)
	require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	var s backendStarted
	require.NoError(e.t, json.Unmarshal(r.body, &s))
	e.t.Cleanup(func() { _ = e.tc.TerminateWorkflow(context.Background(), s.WorkflowID, s.ID, "test done") })
	return s
}

func TestBackendFailoverPlanner(t *testing.T) {
	e := newEnv(t, temporalClient(t))
	e.seed()
	before := e.snapshot()
	for _, c := range []struct{ body, field, detail string }{
		{`{"kind":"backend-failover"}`, "backend", "required"},
		{`{"kind":"backend-failover","backend":"nope"}`, "backend", `"nope"`},
		{`{"kind":"backend-failover","backend":"ceph-a","target":"site-z"}`, "target", `"site-z"`},
		{`{"kind":"backend-failover","backend":"ceph-a","group":"g"}`, "group", "group"},
		{`{"kind":"backend-failover","backend":"ceph-b"}`, "backend", "no replication targets"},
	} {
		p := requireProblem(t, e.do("POST", "/v1/runs", c.body), http.StatusUnprocessableEntity, c.field)
		require.Contains(t, p["detail"], c.detail, c.body)
	}
	require.Equal(t, before, e.snapshot(), "refused starts write nothing")

	s := e.startBackendOK(`{"kind":"backend-failover","backend":"ceph-a","target":"site-b","requested_by":"olga"}`)
	require.Equal(t, workflows.BackendWorkflowID("ceph-a"), s.WorkflowID)
	require.Equal(t, "site-b", s.Site)
	d, err := e.tc.DescribeWorkflowExecution(context.Background(), s.WorkflowID, s.ID)
	require.NoError(t, err)
	require.Equal(t, workflows.BackendFailoverWorkflowName, d.GetWorkflowExecutionInfo().GetType().GetName())
	rec, err := e.store.GetRun(context.Background(), s.ID)
	require.NoError(t, err)
	require.Equal(t, "ceph-a", rec.Backend)
	require.Equal(t, ferry.KindBackendFailover, rec.Kind)

	// One failover per backend at a time.
	requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"backend-failover","backend":"ceph-a","target":"default"}`), http.StatusConflict, "")
}

func shareGroupFixture(name string) ferry.Group {
	g := group(name)
	g.Shares = []ferry.Share{{Name: "media-" + name, Backend: "ceph-a"}}
	return g
}

func TestSharePromotePlanner(t *testing.T) {
	e := newEnv(t, temporalClient(t))
	e.seed()
	name := "shop-" + suffix()
	r := e.do("PUT", "/v1/groups/"+name, mustJSON(t, shareGroupFixture(name)))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	share := "media-" + name
	before := e.snapshot()
	for _, c := range []struct{ body, field, detail string }{
		{`{"kind":"share-promote"}`, "share", "required"},
		{`{"kind":"share-promote","share":"nope"}`, "share", "not a share of any group"},
		{`{"kind":"share-promote","share":"` + share + `","target":"site-z"}`, "target", `"site-z"`},
		{`{"kind":"share-promote","share":"` + share + `","backend":"ceph-a"}`, "backend", "backend"},
	} {
		p := requireProblem(t, e.do("POST", "/v1/runs", c.body), http.StatusUnprocessableEntity, c.field)
		require.Contains(t, p["detail"], c.detail, c.body)
	}
	require.Equal(t, before, e.snapshot())

	s := e.startBackendOK(`{"kind":"share-promote","share":"` + share + `","target":"site-b"}`)
	require.Equal(t, workflows.GroupWorkflowID(name), s.WorkflowID, "the share's group is the mutex")
	require.Equal(t, name, s.Group)
	require.Equal(t, "site-b", s.Site)
	rec, err := e.store.GetRun(context.Background(), s.ID)
	require.NoError(t, err)
	require.Equal(t, share, rec.Share)
	// The group is busy: a failover of it is refused.
	requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+name+`"}`), http.StatusConflict, "")
}

func TestFrozenBackendRefusesMutatingRunsOfItsGroups(t *testing.T) {
	e := newEnv(t, temporalClient(t))
	e.seed()
	name := "shop-" + suffix()
	r := e.do("PUT", "/v1/groups/"+name, mustJSON(t, shareGroupFixture(name)))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	ctx := context.Background()
	// A backend failover froze ceph-a.
	require.NoError(t, e.store.SetBackendState(ctx, "ceph-a", ferry.ReplicationFailingOver, "", true))
	before := e.snapshot()
	for _, body := range []string{
		`{"kind":"failover","group":"` + name + `"}`,
		`{"kind":"share-promote","share":"media-` + name + `"}`,
	} {
		p := requireProblem(t, e.do("POST", "/v1/runs", body), http.StatusConflict, "")
		require.Contains(t, p["detail"], "ceph-a", body)
		require.Contains(t, p["detail"], "frozen", body)
	}
	require.Equal(t, before, e.snapshot(), "nothing backendStarted, nothing written")

	// Its replication target frozen counts too: after a failover it holds
	// the active copies.
	require.NoError(t, e.store.SetBackendState(ctx, "ceph-a", ferry.ReplicationFailedOver, "site-b", false))
	require.NoError(t, e.store.SetBackendState(ctx, "ceph-b", ferry.ReplicationEnabled, "", true))
	p := requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+name+`"}`), http.StatusConflict, "")
	require.Contains(t, p["detail"], "ceph-b")

	// Thawed, the group runs again.
	require.NoError(t, e.store.SetBackendState(ctx, "ceph-b", ferry.ReplicationEnabled, "", false))
	s := e.startBackendOK(`{"kind":"failover","group":"` + name + `"}`)
	require.Equal(t, workflows.GroupWorkflowID(name), s.WorkflowID)
}
