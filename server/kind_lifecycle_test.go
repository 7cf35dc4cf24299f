package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/workflows"
)

func TestLifecyclePlanners(t *testing.T) {
	e := newEnv(t, temporalClient(t))
	e.seed("shop")
	before := e.snapshot()
	for _, c := range []struct{ body, field, detail string }{
		{`{"kind":"protect"}`, "group", "required"},
		{`{"kind":"reprotect","group":"nope"}`, "group", `"nope"`},
		{`{"kind":"suspend","group":"shop","site":"site-a"}`, "site", "not used"},
		{`{"kind":"resume","group":"shop","target":"site-b"}`, "target", "not used"},
		{`{"kind":"unprotect","group":"shop","mode":"planned"}`, "mode", "no mode"},
		{`{"kind":"failback","group":"shop"}`, "group", "already runs at its primary site"},
		{`{"kind":"protect","group":"shop","options":{"quiesce_policy":"abort"}}`, "options.quiesce_policy", "failback"},
	} {
		p := requireProblem(t, e.do("POST", "/v1/runs", c.body), http.StatusUnprocessableEntity, c.field)
		require.Contains(t, p["detail"], c.detail, c.body)
	}
	require.Equal(t, before, e.snapshot(), "refused starts write nothing")

	s := e.startBackendOK(`{"kind":"suspend","group":"shop","requested_by":"pia"}`)
	require.Equal(t, workflows.GroupWorkflowID("shop"), s.WorkflowID)
	require.Equal(t, "site-b", s.Site)
	d, err := e.tc.DescribeWorkflowExecution(context.Background(), s.WorkflowID, s.ID)
	require.NoError(t, err)
	require.Equal(t, workflows.SuspendWorkflowName, d.GetWorkflowExecutionInfo().GetType().GetName())
	// One mutating run per group: a protect while the suspend runs is refused.
	requireProblem(t, e.do("POST", "/v1/runs", `{"kind":"protect","group":"shop"}`), http.StatusConflict, "")
}
