package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/workflows"
)

// as sends a request with the given token ("" for none).
func (e *env) as(token, method, path, body string) response {
	e.t.Helper()
	return e.do(method, path, body, "Authorization", bearer(token))
}

func bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

// TestRouteTableCoversEveryRoute walks chi's routes: every route has a role
// in the one table, and every entry of the table is a route.
func TestRouteTableCoversEveryRoute(t *testing.T) {
	h := server.New(server.Deps{Store: storetest.New(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	routes, ok := h.(chi.Routes)
	require.True(t, ok, "server.New returns chi's router")
	table := server.RouteRoles()
	seen := map[string]bool{}
	require.NoError(t, chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + route
		seen[key] = true
		role, ok := table[key]
		if !ok {
			t.Errorf("route %s has no role in server/auth.go's routeRoles", key)
		}
		require.Contains(t, append([]string{"public"}, ferry.Roles...), role, key)
		return nil
	}))
	for key := range table {
		require.True(t, seen[key], "routeRoles has %s, which is no route", key)
	}
	require.Greater(t, len(seen), 25)
	// Only the probes, the OpenAPI document and the dashboard's static
	// pages (which hold no data) are public.
	for key, role := range table {
		if role == "public" {
			require.Contains(t, []string{"GET /healthz", "GET /readyz", "GET /v1/openapi.json", "GET /", "GET /ui", "GET /ui/*"}, key)
		}
	}
	// A public prefix opens nothing outside it.
	require.True(t, server.IsOpenPath("/ui/app.js"))
	for _, p := range []string{"/ui/../v1/groups", "/uix", "/v1/groups", "/metrics", "/v1/openapi.jsonx"} {
		require.False(t, server.IsOpenPath(p), p)
	}
}

// roleTokens are one token of each role in e's store.
type roleTokens struct{ viewer, operator, admin string }

func (e *env) roleTokens(project string) roleTokens {
	e.t.Helper()
	sfx := suffix()
	return roleTokens{
		viewer:   storetest.Token(e.t, e.store, "viewer-"+sfx, ferry.RoleViewer, project),
		operator: storetest.Token(e.t, e.store, "operator-"+sfx, ferry.RoleOperator, project),
		admin:    storetest.Token(e.t, e.store, "admin-"+sfx, ferry.RoleAdmin, ""),
	}
}

// startFakeWorker polls e's queue with the fake failover (it waits for
// approval and takes approve and abort).
func (e *env) startFakeWorker() {
	e.t.Helper()
	w := worker.New(e.tc, e.queue, worker.Options{})
	w.RegisterWorkflowWithOptions(fakeFailover, workflow.RegisterOptions{Name: workflows.FailoverWorkflowName})
	require.NoError(e.t, w.Start())
	e.t.Cleanup(w.Stop)
}

func (e *env) waitState(token, id, state string) {
	e.t.Helper()
	var r response
	require.Eventually(e.t, func() bool {
		r = e.as(token, "GET", "/v1/runs/"+id, "")
		var run ferry.Run
		return r.status == http.StatusOK && json.Unmarshal(r.body, &run) == nil && run.State == state
	}, 20*time.Second, 100*time.Millisecond, "body: %s", r.body)
}

// TestRolesByRouteClass: each role against a representative route of each
// class (read, start a run, steer a run, admin), and the kinds only an
// admin may start.
func TestRolesByRouteClass(t *testing.T) {
	tc := temporalClient(t)
	e := newEnv(t, tc)
	g1, g2, g3 := "g1-"+suffix(), "g2-"+suffix(), "g3-"+suffix()
	e.seed(g1, g2, g3)
	e.startFakeWorker()
	tok := e.roleTokens("")

	// Read: every role.
	for _, k := range []string{tok.viewer, tok.operator, tok.admin} {
		require.Equal(t, http.StatusOK, e.as(k, "GET", "/v1/groups", "").status)
		require.Equal(t, http.StatusOK, e.as(k, "GET", "/v1/runs", "").status)
	}

	// Start a run: operator and admin; a viewer is told which role it needs.
	start := func(g string) string { return `{"kind":"failover","group":"` + g + `"}` }
	p := requireProblem(t, e.as(tok.viewer, "POST", "/v1/runs", start(g1)), http.StatusForbidden, "")
	require.Equal(t, "operator", p["role"])
	require.Contains(t, p["detail"], "needs the operator role")
	require.Contains(t, p["detail"], "has the viewer role")
	requireProblem(t, e.as(tok.viewer, "POST", "/v1/runs", `{"kind":"failover","group":"`+g1+`","dry_run":true}`), http.StatusForbidden, "")
	r := e.as(tok.operator, "POST", "/v1/runs", start(g1))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	opRun := r.json(t)["id"].(string)
	r = e.as(tok.admin, "POST", "/v1/runs", start(g2))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	adminRun := r.json(t)["id"].(string)
	// An operator may plan runs: its dry run passes authorization and
	// meets the planner (which refuses a group that does not exist, at
	// once, without asking a worker).
	requireProblem(t, e.as(tok.operator, "POST", "/v1/runs", `{"kind":"failover","group":"nosuch","dry_run":true}`), http.StatusUnprocessableEntity, "group")

	// Who started it is the token, whatever the body claims.
	rec, err := e.store.GetRun(context.Background(), opRun)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(rec.StartedBy, "operator-"), rec.StartedBy)
	require.Equal(t, rec.StartedBy, rec.RequestedBy, "requested_by defaults to the token")

	// Steer: operator and admin; not a viewer.
	e.waitState(tok.viewer, opRun, ferry.RunWaitingApproval)
	e.waitState(tok.viewer, adminRun, ferry.RunWaitingApproval)
	requireProblem(t, e.as(tok.viewer, "POST", "/v1/runs/"+opRun+"/approve", `{}`), http.StatusForbidden, "")
	r = e.as(tok.operator, "POST", "/v1/runs/"+opRun+"/approve", `{"by":"alice","comment":"go"}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var run ferry.Run
	require.NoError(t, json.Unmarshal(r.body, &run))
	require.Len(t, run.Approvals, 1)
	require.Equal(t, rec.StartedBy+" (alice)", run.Approvals[0].By, "the approval names the token and the person")
	r = e.as(tok.admin, "POST", "/v1/runs/"+adminRun+"/abort", `{}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	r = e.as(tok.operator, "POST", "/v1/runs/"+opRun+"/abort", `{}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	e.waitState(tok.admin, adminRun, ferry.RunAborted)
	r = e.as(tok.viewer, "GET", "/v1/runs/"+opRun+"/report", "")
	require.Equal(t, http.StatusOK, r.status)
	require.NoError(t, json.Unmarshal(r.body, &run))
	require.Equal(t, rec.StartedBy, run.StartedBy, "the report names who started the run")
	r = e.do("GET", "/v1/runs/"+opRun+"/report", "", "Accept", "text/markdown")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), "| Started by (token) | "+rec.StartedBy+" |")
	require.Contains(t, string(r.body), rec.StartedBy+" (alice)", "the Markdown report names the approver")

	// Admin: inventory, tokens and the audit log.
	for _, k := range []string{tok.viewer, tok.operator} {
		p := requireProblem(t, e.as(k, "PUT", "/v1/sites/site-x", `{}`), http.StatusForbidden, "")
		require.Equal(t, "admin", p["role"])
		requireProblem(t, e.as(k, "POST", "/v1/tokens", `{"name":"x","role":"viewer"}`), http.StatusForbidden, "")
		requireProblem(t, e.as(k, "GET", "/v1/tokens", ""), http.StatusForbidden, "")
		requireProblem(t, e.as(k, "GET", "/v1/audit", ""), http.StatusForbidden, "")
		requireProblem(t, e.as(k, "DELETE", "/v1/groups/"+g3, ""), http.StatusForbidden, "")
	}
	require.Equal(t, http.StatusCreated, e.as(tok.admin, "PUT", "/v1/sites/site-x", `{}`).status)
	r = e.as(tok.admin, "POST", "/v1/tokens", `{"name":"ci","role":"operator","project":"retail"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.Equal(t, http.StatusOK, e.as(tok.admin, "GET", "/v1/tokens", "").status)
	require.Equal(t, http.StatusOK, e.as(tok.admin, "GET", "/v1/audit", "").status)

	// Whole-site and whole-backend runs: admin only, dry runs too.
	for _, body := range []string{
		`{"kind":"evacuate","site":"site-a"}`,
		`{"kind":"evacuate","site":"site-a","dry_run":true}`,
		`{"kind":"backend-failover","backend":"ceph-a"}`,
	} {
		p := requireProblem(t, e.as(tok.operator, "POST", "/v1/runs", body), http.StatusForbidden, "")
		require.Equal(t, "admin", p["role"], body)
		require.Contains(t, p["detail"], "runs needs the admin role")
	}
	requireProblem(t, e.as(tok.admin, "POST", "/v1/runs", `{"kind":"evacuate","site":"nosuch","dry_run":true}`), http.StatusUnprocessableEntity, "site")
}

// TestProjectScope: a project-scoped token sees and runs its project's
// groups only, and what it cannot see answers as what does not exist.
func TestProjectScope(t *testing.T) {
	tc := temporalClient(t)
	e := newEnv(t, tc)
	mine, theirs, free := "mine-"+suffix(), "theirs-"+suffix(), "free-"+suffix()
	e.seed()
	for g, project := range map[string]string{mine: "retail", theirs: "finance", free: ""} {
		grp := group(g)
		grp.Project = project
		r := e.do("PUT", "/v1/groups/"+g, mustJSON(t, grp))
		require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	}
	// A run of the other project's group, started by an admin.
	r := e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+theirs+`"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	theirRun := r.json(t)["id"].(string)
	retail := e.roleTokens("retail")

	// The list holds the project's groups only.
	var groups struct {
		Items []ferry.Group `json:"items"`
	}
	r = e.as(retail.viewer, "GET", "/v1/groups", "")
	require.Equal(t, http.StatusOK, r.status)
	require.NoError(t, json.Unmarshal(r.body, &groups))
	require.Len(t, groups.Items, 1)
	require.Equal(t, mine, groups.Items[0].Name)
	require.Equal(t, "retail", groups.Items[0].Project)
	require.Equal(t, http.StatusOK, e.as(retail.viewer, "GET", "/v1/groups/"+mine, "").status)

	// Another project's group, and its runs, answer exactly as ones that do
	// not exist.
	same := func(method, hidden, missing, body string) {
		t.Helper()
		a := e.as(retail.operator, method, hidden, body)
		b := e.as(retail.operator, method, missing, body)
		require.Equal(t, b.status, a.status, "%s %s: %s", method, hidden, a.body)
		pa, pb := a.json(t), b.json(t)
		require.Equal(t, pb["field"], pa["field"])
		require.Equal(t, pb["title"], pa["title"])
		require.NotEqual(t, http.StatusOK, a.status)
	}
	requireProblem(t, e.as(retail.viewer, "GET", "/v1/groups/"+theirs, ""), http.StatusNotFound, "")
	same("GET", "/v1/groups/"+theirs, "/v1/groups/nosuch", "")
	same("GET", "/v1/groups/"+theirs+"/replication", "/v1/groups/nosuch/replication", "")
	same("PUT", "/v1/groups/"+theirs+"/drill-schedule", "/v1/groups/nosuch/drill-schedule", `{"cron":"0 3 * * 1"}`)
	requireProblem(t, e.as(retail.operator, "GET", "/v1/runs/"+theirRun, ""), http.StatusNotFound, "")
	same("GET", "/v1/runs/"+theirRun, "/v1/runs/nosuch", "")
	same("GET", "/v1/runs/"+theirRun+"/report", "/v1/runs/nosuch/report", "")
	same("POST", "/v1/runs/"+theirRun+"/abort", "/v1/runs/nosuch/abort", `{}`)
	// A start on it is refused as a start on a group that does not exist.
	a := e.as(retail.operator, "POST", "/v1/runs", `{"kind":"failover","group":"`+theirs+`"}`)
	b := e.as(retail.operator, "POST", "/v1/runs", `{"kind":"failover","group":"nosuch"}`)
	require.Equal(t, b.status, a.status, "body: %s", a.body)
	require.Equal(t, strings.ReplaceAll(string(b.body), "nosuch", theirs), string(a.body))
	requireProblem(t, a, http.StatusUnprocessableEntity, "group")
	// So is one on a group of no project.
	requireProblem(t, e.as(retail.operator, "POST", "/v1/runs", `{"kind":"reprotect","group":"`+free+`"}`), http.StatusUnprocessableEntity, "group")

	// Whole-site runs are an admin's, even for a project's operator.
	p := requireProblem(t, e.as(retail.operator, "POST", "/v1/runs", `{"kind":"evacuate","site":"site-a"}`), http.StatusForbidden, "")
	require.Equal(t, "admin", p["role"])

	// Its own group: it starts and sees the run; the run list holds its
	// project's runs only.
	r = e.as(retail.operator, "POST", "/v1/runs", `{"kind":"failover","group":"`+mine+`"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	myRun := r.json(t)["id"].(string)
	require.Equal(t, http.StatusOK, e.as(retail.viewer, "GET", "/v1/runs/"+myRun, "").status)
	var runs struct {
		Items []ferry.Run `json:"items"`
	}
	r = e.as(retail.viewer, "GET", "/v1/runs", "")
	require.NoError(t, json.Unmarshal(r.body, &runs))
	require.Len(t, runs.Items, 1)
	require.Equal(t, myRun, runs.Items[0].ID)
	require.Equal(t, "retail", runs.Items[0].Project)
	r = e.as(retail.viewer, "GET", "/v1/runs?group="+theirs, "")
	require.NoError(t, json.Unmarshal(r.body, &runs))
	require.Empty(t, runs.Items)
	// An unscoped token sees both.
	r = e.do("GET", "/v1/runs", "")
	require.NoError(t, json.Unmarshal(r.body, &runs))
	require.Len(t, runs.Items, 2)

	// An admin token has no project.
	requireProblem(t, e.do("POST", "/v1/tokens", `{"name":"boss","role":"admin","project":"retail"}`), http.StatusUnprocessableEntity, "project")
	ctx := context.Background()
	for _, id := range []string{theirRun, myRun} {
		rec, err := e.store.GetRun(ctx, id)
		require.NoError(t, err)
		_ = tc.TerminateWorkflow(ctx, rec.WorkflowID, id, "test done")
	}
}

// TestUnauthenticated: no token, a bad one, a revoked one and an expired
// one are all 401 with a Bearer challenge; the probes stay open.
func TestUnauthenticated(t *testing.T) {
	e := newEnv(t, nil)
	require.Equal(t, http.StatusOK, e.as("", "GET", "/healthz", "").status)
	require.Equal(t, http.StatusServiceUnavailable, e.as("", "GET", "/readyz", "").status, "open, and says why it is not ready")

	ctx := context.Background()
	revoked := storetest.Token(t, e.store, "gone", ferry.RoleAdmin, "")
	tk, err := e.store.TokenByHash(ctx, ferry.HashToken(revoked))
	require.NoError(t, err)
	r := e.do("DELETE", "/v1/tokens/"+tk.ID, "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)

	past, secret, hash, err := ferry.NewToken(ferry.Token{Name: "old", Role: ferry.RoleAdmin, ExpiresAt: ptr(time.Now().Add(-time.Hour))}, time.Now().Add(-2*time.Hour))
	require.NoError(t, err)
	require.NoError(t, e.store.CreateToken(ctx, past, hash))

	cases := []struct {
		name, auth, detail string
	}{
		{"no token", "", "authentication required"},
		{"not bearer", "Basic YWRtaW46YWRtaW4=", "must be 'Bearer <token>'"},
		{"unknown token", "Bearer fry_nosuchtoken", "not valid"},
		{"huge token", "Bearer " + strings.Repeat("x", 10000), "not valid"},
		{"revoked", "Bearer " + revoked, "was revoked"},
		{"expired", "Bearer " + secret, "expired at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, req := range []struct{ method, path string }{
				{"GET", "/v1/groups"}, {"POST", "/v1/runs"}, {"GET", "/v1/nosuchroute"}, {"PUT", "/v1/sites/x"},
			} {
				r := e.do(req.method, req.path, `{}`, "Authorization", c.auth)
				p := requireProblem(t, r, http.StatusUnauthorized, "")
				require.Contains(t, p["detail"], c.detail)
				require.True(t, strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer "), r.header)
				if c.auth != "" {
					require.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)
					require.NotContains(t, string(r.body), strings.TrimPrefix(c.auth, "Bearer "), "the answer does not echo the token")
				}
			}
		})
	}
	// The live token still works, and the revoked one is listed as such.
	r = e.do("GET", "/v1/tokens/"+tk.ID, "")
	require.Equal(t, http.StatusOK, r.status)
	var got ferry.Token
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.NotNil(t, got.RevokedAt)
}

// TestAuditLogRecordsMutatingRequests: a sequence of requests, then the
// log as the API shows it and as the table holds it: who, what, outcome and
// run, and no token anywhere.
func TestAuditLogRecordsMutatingRequests(t *testing.T) {
	tc := temporalClient(t)
	e := newEnv(t, tc)
	shop := "shop-" + suffix()
	e.seed(shop)
	tok := e.roleTokens("")
	since := time.Now().UTC()

	// 1. an operator starts a run; 2. a viewer tries to; 3. nobody tries
	// to; 4. reads, which are not audited; 5. an admin creates a token.
	r := e.as(tok.operator, "POST", "/v1/runs", `{"kind":"failover","group":"`+shop+`"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	runID := r.json(t)["id"].(string)
	require.Equal(t, http.StatusForbidden, e.as(tok.viewer, "DELETE", "/v1/groups/"+shop, "").status)
	require.Equal(t, http.StatusUnauthorized, e.as("", "PUT", "/v1/sites/evil", `{}`).status)
	require.Equal(t, http.StatusOK, e.as(tok.viewer, "GET", "/v1/groups", "").status)
	r = e.as(tok.admin, "POST", "/v1/tokens", `{"name":"robot","role":"viewer","expires_in_seconds":3600}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var created struct {
		ferry.Token
		Secret string `json:"token"`
	}
	require.NoError(t, json.Unmarshal(r.body, &created))
	require.True(t, strings.HasPrefix(created.Secret, ferry.TokenPrefix))
	require.NotNil(t, created.ExpiresAt)
	// The new token works at once.
	require.Equal(t, http.StatusOK, e.as(created.Secret, "GET", "/v1/sites", "").status)

	r = e.as(tok.admin, "GET", "/v1/audit?since="+since.Format(time.RFC3339Nano), "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	for _, secret := range []string{tok.viewer, tok.operator, tok.admin, created.Secret} {
		require.NotContains(t, string(r.body), secret)
	}
	var log struct {
		Items []ferry.AuditEntry `json:"items"`
	}
	require.NoError(t, json.Unmarshal(r.body, &log))
	require.Len(t, log.Items, 4, "mutating requests only: %s", r.body)
	want := []struct {
		method, path string
		status       int
		role         string
	}{
		{"POST", "/v1/tokens", 201, "admin"},
		{"PUT", "/v1/sites/evil", 401, ""},
		{"DELETE", "/v1/groups/" + shop, 403, "viewer"},
		{"POST", "/v1/runs", 201, "operator"},
	}
	for i, w := range want {
		got := log.Items[i]
		require.Equal(t, w.method, got.Method, "entry %d", i)
		require.Equal(t, w.path, got.Path, "entry %d", i)
		require.Equal(t, w.status, got.Status, "entry %d", i)
		require.Equal(t, w.role, got.Role, "entry %d", i)
		require.NotEmpty(t, got.RemoteAddr)
		require.NotEmpty(t, got.RequestID)
		require.False(t, got.At.Before(since.Add(-time.Second)))
		if w.role != "" {
			require.NotEmpty(t, got.TokenID)
			require.True(t, strings.HasPrefix(got.TokenName, w.role+"-"), got.TokenName)
		} else {
			require.Empty(t, got.TokenID)
		}
	}
	require.Equal(t, runID, log.Items[3].RunID, "the run it started")

	// Filters and pages.
	op, err := e.store.TokenByHash(context.Background(), ferry.HashToken(tok.operator))
	require.NoError(t, err)
	r = e.as(tok.admin, "GET", "/v1/audit?token="+op.ID, "")
	require.NoError(t, json.Unmarshal(r.body, &log))
	require.Len(t, log.Items, 1)
	require.Equal(t, "/v1/runs", log.Items[0].Path)
	var page struct {
		Items []ferry.AuditEntry `json:"items"`
		Next  string             `json:"next_page_token"`
	}
	r = e.as(tok.admin, "GET", "/v1/audit?limit=1", "")
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Items, 1)
	require.NotEmpty(t, page.Next)
	requireProblem(t, e.as(tok.admin, "GET", "/v1/audit?since=yesterday", ""), http.StatusUnprocessableEntity, "since")

	// The table itself: no secret in any column of any row.
	rows, err := e.store.Pool().Query(context.Background(), `SELECT a::text FROM audit_log a`)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var row string
		require.NoError(t, rows.Scan(&row))
		for _, secret := range []string{tok.viewer, tok.operator, tok.admin, created.Secret, e.token} {
			require.NotContains(t, row, secret)
			require.NotContains(t, row, strings.TrimPrefix(secret, ferry.TokenPrefix))
		}
		n++
	}
	require.NoError(t, rows.Err())
	require.GreaterOrEqual(t, n, 4)
	rec, err := e.store.GetRun(context.Background(), runID)
	require.NoError(t, err)
	_ = tc.TerminateWorkflow(context.Background(), rec.WorkflowID, runID, "test done")
}

func ptr[T any](v T) *T { return &v }

// TestNoChangeWithoutAuditEntry: when the audit log cannot be written, a
// mutating request is refused and changes nothing; reads go on.
func TestNoChangeWithoutAuditEntry(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.store.Pool().Exec(context.Background(), `DROP TABLE audit_log`)
	require.NoError(t, err)
	p := requireProblem(t, e.do("PUT", "/v1/sites/site-a", `{}`), http.StatusServiceUnavailable, "")
	require.Contains(t, p["detail"], "audit log cannot be written")
	_, err = e.store.GetSite(context.Background(), "site-a")
	require.Equal(t, ferry.ENotFound, ferry.ErrorCode(err), "nothing was written")
	require.Equal(t, http.StatusOK, e.do("GET", "/v1/sites", "").status)
}
