package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
)

// One dev server serves every test of the package that needs Temporal; each
// test uses its own groups and task queue, so they do not meet.
var (
	devOnce sync.Once
	dev     *devserver.Server
	devErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if dev != nil {
		_ = dev.Stop()
	}
	os.Exit(code)
}

func temporalClient(t *testing.T) client.Client {
	t.Helper()
	devOnce.Do(func() { dev, devErr = devserver.StartEphemeral(context.Background()) })
	require.NoError(t, devErr)
	return dev.Client()
}

type env struct {
	t     *testing.T
	url   string
	store *store.Store
	tc    client.Client
	queue string
	// token is an admin token of the test's store, sent by do unless a
	// request sets its own Authorization header.
	token string
}

type option func(*server.Deps)

// newEnv serves the API over a fresh database, with Temporal when tc is
// not nil.
func newEnv(t *testing.T, tc client.Client, opts ...option) *env {
	t.Helper()
	st := storetest.New(t)
	queue := "test-" + suffix()
	d := server.Deps{
		Store:         st,
		Temporal:      tc,
		Namespace:     "default",
		TaskQueue:     queue,
		TemporalUIURL: "http://ui.example:8233",
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&d)
	}
	srv := httptest.NewServer(server.New(d))
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL, store: st, tc: tc, queue: queue, token: storetest.AdminToken(t, st)}
}

func suffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (e *env) do(method, path, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	require.NoError(e.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// requireProblem checks a problem+json answer and returns it.
func requireProblem(t *testing.T, r response, status int, field string) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	p := r.json(t)
	require.EqualValues(t, status, p["status"])
	require.NotEmpty(t, p["title"])
	require.NotEmpty(t, p["type"])
	require.NotEmpty(t, p["detail"])
	if field == "" {
		require.NotContains(t, p, "field")
	} else {
		require.Equal(t, field, p["field"], "detail: %v", p["detail"])
	}
	return p
}

func site(name string) ferry.Site { return ferry.Site{Name: name, Description: "site " + name} }

func group(name string) ferry.Group {
	return ferry.Group{
		Name:        name,
		PrimarySite: "site-a",
		DRSite:      "site-b",
		RPOSeconds:  60,
		Volumes:     []ferry.Volume{{Name: "db-root", Backend: "ceph-a"}},
		Tiers: []ferry.Tier{
			{Name: "db", Servers: []ferry.Server{{Name: "db-1", Volumes: []string{"db-root"}}}},
			{Name: "web", Servers: []ferry.Server{{Name: "web-1"}}},
		},
		DNSRecords: []ferry.DNSRecord{{Name: "shop.example.", Type: "A", Primary: "10.0.0.1", DR: "10.1.0.1"}},
	}
}

// seed puts two sites (and a third), two backends and the given groups.
func (e *env) seed(groups ...string) {
	e.t.Helper()
	for _, s := range []string{"site-a", "site-b", "site-c"} {
		r := e.do("PUT", "/v1/sites/"+s, mustJSON(e.t, site(s)))
		require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	}
	for _, b := range []ferry.Backend{
		{Name: "ceph-b", Site: "site-b", Type: "rbd"},
		{Name: "ceph-a", Site: "site-a", Type: "rbd", Members: []string{"h1", "h2"},
			ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "ceph-b"}}},
	} {
		r := e.do("PUT", "/v1/backends/"+b.Name, mustJSON(e.t, b))
		require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	}
	for _, g := range groups {
		r := e.do("PUT", "/v1/groups/"+g, mustJSON(e.t, group(g)))
		require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("GET", "/healthz", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, map[string]any{"status": "ok"}, r.json(t))
	require.NotEmpty(t, r.header.Get("X-Request-Id"))

	r = e.do("GET", "/healthz", "", "X-Request-Id", "abc-123")
	require.Equal(t, "abc-123", r.header.Get("X-Request-Id"))
}

func TestReadyzWithoutTemporal(t *testing.T) {
	e := newEnv(t, nil)
	p := requireProblem(t, e.do("GET", "/readyz", ""), http.StatusServiceUnavailable, "")
	require.Contains(t, p["detail"], "temporal")
	require.NotContains(t, p["detail"], "postgresql")
}

func TestReadyz(t *testing.T) {
	e := newEnv(t, temporalClient(t))
	r := e.do("GET", "/readyz", "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
}

func TestUnknownRoute(t *testing.T) {
	e := newEnv(t, nil)
	requireProblem(t, e.do("GET", "/v1/nope", ""), http.StatusNotFound, "")
	requireProblem(t, e.do("POST", "/v1/sites/a", "{}"), http.StatusMethodNotAllowed, "")
	requireProblem(t, e.do("POST", "/v1/runs/x/explode", ""), http.StatusNotFound, "")
}

func TestSiteCRUD(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("PUT", "/v1/sites/site-a", `{"name":"site-a","description":"Frankfurt"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "Frankfurt", r.json(t)["description"])

	// The name may come from the path alone.
	r = e.do("PUT", "/v1/sites/site-a", `{"description":"Frankfurt 2","labels":{"region":"eu"}}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "site-a", r.json(t)["name"])

	r = e.do("GET", "/v1/sites/site-a", "")
	require.Equal(t, http.StatusOK, r.status)
	var got ferry.Site
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.Equal(t, ferry.Site{Name: "site-a", Description: "Frankfurt 2", Labels: map[string]string{"region": "eu"}}, got)

	r = e.do("GET", "/v1/sites", "")
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"items":[{"name":"site-a","description":"Frankfurt 2","labels":{"region":"eu"}}],"next_page_token":""}`, string(r.body))

	r = e.do("DELETE", "/v1/sites/site-a", "")
	require.Equal(t, http.StatusNoContent, r.status)
	require.Empty(t, r.body)

	requireProblem(t, e.do("GET", "/v1/sites/site-a", ""), http.StatusNotFound, "")
	requireProblem(t, e.do("DELETE", "/v1/sites/site-a", ""), http.StatusNotFound, "")
	r = e.do("GET", "/v1/sites", "")
	require.JSONEq(t, `{"items":[],"next_page_token":""}`, string(r.body))
}

func TestBackendAndGroupCRUD(t *testing.T) {
	e := newEnv(t, nil)
	e.seed()

	// Observed fields in a PUT are ignored.
	b := ferry.Backend{Name: "ceph-c", Site: "site-c", Type: "rbd", ReplicationStatus: "failed-over", ActiveBackendID: "x", Frozen: true}
	r := e.do("PUT", "/v1/backends/ceph-c", mustJSON(t, b))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var gotB ferry.Backend
	require.NoError(t, json.Unmarshal(r.body, &gotB))
	require.Empty(t, gotB.ReplicationStatus)
	require.Empty(t, gotB.ActiveBackendID)
	require.False(t, gotB.Frozen)

	require.NoError(t, e.store.SetBackendState(context.Background(), "ceph-c", ferry.ReplicationFailedOver, "site-b", true))
	b.Members = []string{"h9"}
	r = e.do("PUT", "/v1/backends/ceph-c", mustJSON(t, b))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &gotB))
	require.Equal(t, []string{"h9"}, gotB.Members)
	require.Equal(t, ferry.ReplicationFailedOver, gotB.ReplicationStatus, "a replace keeps the observed state")

	// A group gets its defaults; active_site in a PUT is ignored.
	g := group("shop")
	g.ActiveSite = "site-b"
	r = e.do("PUT", "/v1/groups/shop", mustJSON(t, g))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	var gotG ferry.Group
	require.NoError(t, json.Unmarshal(r.body, &gotG))
	require.Equal(t, ferry.ConsistencyCrash, gotG.Consistency)
	require.Equal(t, ferry.QuiesceAbort, gotG.QuiescePolicy)
	require.Equal(t, 60, gotG.DNSRecords[0].TTL)
	require.Empty(t, gotG.ActiveSite)

	g.RPOSeconds = 120
	r = e.do("PUT", "/v1/groups/shop", mustJSON(t, g))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	r = e.do("GET", "/v1/groups/shop", "")
	require.Equal(t, http.StatusOK, r.status)
	require.EqualValues(t, 120, r.json(t)["rpo_seconds"])

	// A site in use cannot go.
	requireProblem(t, e.do("DELETE", "/v1/sites/site-a", ""), http.StatusConflict, "")

	require.Equal(t, http.StatusNoContent, e.do("DELETE", "/v1/groups/shop", "").status)
	require.Equal(t, http.StatusNoContent, e.do("DELETE", "/v1/backends/ceph-c", "").status)
	requireProblem(t, e.do("GET", "/v1/groups/shop", ""), http.StatusNotFound, "")
	requireProblem(t, e.do("GET", "/v1/backends/ceph-c", ""), http.StatusNotFound, "")
	requireProblem(t, e.do("GET", "/v1/groups/nope/replication", ""), http.StatusNotFound, "")
}

func TestListPaging(t *testing.T) {
	e := newEnv(t, nil)
	var want []string
	for _, n := range []string{"s1", "s2", "s3", "s4", "s5"} {
		require.Equal(t, http.StatusCreated, e.do("PUT", "/v1/sites/"+n, "{}").status)
		want = append(want, n)
	}
	var got []string
	token := ""
	pages := 0
	for {
		r := e.do("GET", "/v1/sites?limit=2&page_token="+token, "")
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		var page struct {
			Items         []ferry.Site `json:"items"`
			NextPageToken string       `json:"next_page_token"`
		}
		require.NoError(t, json.Unmarshal(r.body, &page))
		require.LessOrEqual(t, len(page.Items), 2)
		for _, s := range page.Items {
			got = append(got, s.Name)
		}
		pages++
		if page.NextPageToken == "" {
			break
		}
		token = page.NextPageToken
		require.Less(t, pages, 10)
	}
	require.Equal(t, want, got)
	require.Equal(t, 3, pages)

	requireProblem(t, e.do("GET", "/v1/sites?limit=0", ""), http.StatusUnprocessableEntity, "limit")
	requireProblem(t, e.do("GET", "/v1/groups?limit=x", ""), http.StatusUnprocessableEntity, "limit")
	requireProblem(t, e.do("GET", "/v1/backends?limit=1001", ""), http.StatusUnprocessableEntity, "limit")
	requireProblem(t, e.do("GET", "/v1/sites?page_token=%21%21", ""), http.StatusUnprocessableEntity, "page_token")
	requireProblem(t, e.do("GET", "/v1/runs?limit=-1", ""), http.StatusUnprocessableEntity, "limit")
}

// snapshot is everything the API can write.
func (e *env) snapshot() string {
	e.t.Helper()
	var out []string
	for _, p := range []string{"/v1/sites", "/v1/backends", "/v1/groups", "/v1/runs"} {
		r := e.do("GET", p+"?limit=1000", "")
		require.Equal(e.t, http.StatusOK, r.status, "body: %s", r.body)
		out = append(out, string(r.body))
	}
	return strings.Join(out, "\n")
}

func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("shop")
	big := `{"name":"site-a","description":"` + strings.Repeat("x", 1<<20) + `"}`
	invalidGroup := group("shop")
	invalidGroup.Tiers[1].Servers[0].Name = "db-1"
	unknownBackend := group("shop")
	unknownBackend.Volumes[0].Backend = "nope"

	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"malformed site", "PUT", "/v1/sites/site-a", `{"name":`, 400, ""},
		{"not json", "PUT", "/v1/sites/site-a", `name: site-a`, 400, ""},
		{"empty body", "PUT", "/v1/sites/site-a", ``, 400, ""},
		{"array body", "PUT", "/v1/sites/site-a", `[]`, 400, ""},
		{"two values", "PUT", "/v1/sites/site-a", `{} {}`, 400, ""},
		{"oversize site", "PUT", "/v1/sites/site-a", big, 413, ""},
		{"site unknown field", "PUT", "/v1/sites/site-a", `{"name":"site-a","region":"eu"}`, 422, "region"},
		{"site wrong type", "PUT", "/v1/sites/site-a", `{"name":"site-a","labels":["x"]}`, 422, "labels"},
		{"site name mismatch", "PUT", "/v1/sites/site-a", `{"name":"site-z"}`, 422, "name"},
		{"site bad name", "PUT", "/v1/sites/Site-A", `{}`, 422, "name"},
		{"backend bad type", "PUT", "/v1/backends/ceph-a", `{"site":"site-a","type":"nfs"}`, 422, "type"},
		{"backend unknown site", "PUT", "/v1/backends/ceph-x", `{"site":"site-x","type":"rbd"}`, 422, "site"},
		{"backend members type", "PUT", "/v1/backends/ceph-a", `{"site":"site-a","type":"rbd","members":"h1"}`, 422, "members"},
		{"backend frozen type", "PUT", "/v1/backends/ceph-a", `{"site":"site-a","type":"rbd","frozen":"yes"}`, 422, "frozen"},
		{"group rpo string", "PUT", "/v1/groups/shop", `{"rpo_seconds":"x"}`, 422, "rpo_seconds"},
		{"group nested type", "PUT", "/v1/groups/shop", `{"tiers":[{"name":"a","servers":"x"}]}`, 422, "tiers.servers"},
		{"group unknown field", "PUT", "/v1/groups/shop", `{"name":"shop","colour":"red"}`, 422, "colour"},
		{"group invalid", "PUT", "/v1/groups/shop", mustJSON(t, invalidGroup), 422, "tiers[1].servers[0].name"},
		{"group unknown backend", "PUT", "/v1/groups/shop", mustJSON(t, unknownBackend), 422, "volumes[0].backend"},
		{"group malformed", "PUT", "/v1/groups/shop", `{"name":"shop",}`, 400, ""},
		{"run malformed", "POST", "/v1/runs", `{"kind":"failover"`, 400, ""},
		{"run empty", "POST", "/v1/runs", ``, 400, ""},
		{"run missing kind", "POST", "/v1/runs", `{"group":"shop"}`, 422, "kind"},
		{"run unknown kind", "POST", "/v1/runs", `{"kind":"explode","group":"shop"}`, 422, "kind"},
		{"run drill without group", "POST", "/v1/runs", `{"kind":"drill"}`, 422, "group"},
		{"run kind number", "POST", "/v1/runs", `{"kind":1}`, 422, "kind"},
		{"run missing group", "POST", "/v1/runs", `{"kind":"failover"}`, 422, "group"},
		{"run unknown group", "POST", "/v1/runs", `{"kind":"failover","group":"nope"}`, 422, "group"},
		{"run group number", "POST", "/v1/runs", `{"kind":"failover","group":5}`, 422, "group"},
		{"run bad mode", "POST", "/v1/runs", `{"kind":"failover","group":"shop","mode":"sideways"}`, 422, "mode"},
		{"run unknown target", "POST", "/v1/runs", `{"kind":"failover","group":"shop","target":"site-x"}`, 422, "target"},
		{"run target is active", "POST", "/v1/runs", `{"kind":"failover","group":"shop","target":"site-a"}`, 422, "target"},
		{"run site scope", "POST", "/v1/runs", `{"kind":"failover","group":"shop","site":"site-a"}`, 422, "site"},
		{"run bad quiesce", "POST", "/v1/runs", `{"kind":"failover","group":"shop","options":{"quiesce_policy":"pray"}}`, 422, "options.quiesce_policy"},
		{"run out-of-band fence of a planned failover", "POST", "/v1/runs", `{"kind":"failover","group":"shop","options":{"fenced_out_of_band":"array off"}}`, 422, "options.fenced_out_of_band"},
		{"run out-of-band fence on two lines", "POST", "/v1/runs", `{"kind":"failover","group":"shop","mode":"unplanned","options":{"fenced_out_of_band":"array\noff"}}`, 422, "options.fenced_out_of_band"},
		{"run option type", "POST", "/v1/runs", `{"kind":"failover","group":"shop","options":{"skip_approval":"yes"}}`, 422, "options.skip_approval"},
		{"run unknown option", "POST", "/v1/runs", `{"kind":"failover","group":"shop","options":{"force":true}}`, 422, "force"},
		{"run unknown field", "POST", "/v1/runs", `{"kind":"failover","group":"shop","priority":1}`, 422, "priority"},
		{"run dry run wrong type", "POST", "/v1/runs", `{"kind":"failover","group":"shop","dry_run":"yes"}`, 422, "dry_run"},
		{"run oversize", "POST", "/v1/runs", `{"kind":"failover","requested_by":"` + strings.Repeat("x", 1<<20) + `"}`, 413, ""},
		{"run state filter", "GET", "/v1/runs?state=sleeping", ``, 422, "state"},
		{"run kind filter", "GET", "/v1/runs?kind=explode", ``, 422, "kind"},
		{"steer malformed", "POST", "/v1/runs/r1/approve", `{"by":`, 400, ""},
		{"steer unknown field", "POST", "/v1/runs/r1/approve", `{"who":"me"}`, 422, "who"},
	}
	before := e.snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := requireProblem(t, e.do(tt.method, tt.path, tt.body), tt.status, tt.field)
			if tt.field != "" {
				require.Contains(t, p["detail"], tt.field)
			}
		})
	}
	require.Equal(t, before, e.snapshot(), "bad input changed the store")
}

func TestReplication(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("shop")
	now := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, e.store.PutReplicas(context.Background(), "shop", []ferry.Replica{
		{Group: "shop", Resource: "db-root", Kind: "volume", Site: "site-a", Backend: "ceph-a", State: ferry.ReplicaActive, Observed: now},
		{Group: "shop", Resource: "db-root", Kind: "volume", Site: "site-b", Backend: "ceph-b", State: ferry.ReplicaInSync, LagSecs: 12, Observed: now},
	}))
	r := e.do("GET", "/v1/groups/shop/replication", "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var got struct {
		RPOSeconds int `json:"rpo_seconds"`
		Items      []struct {
			ferry.Replica
			RPOCompliant bool `json:"rpo_compliant"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.Equal(t, 60, got.RPOSeconds)
	require.Len(t, got.Items, 2)
	for _, it := range got.Items {
		require.True(t, it.RPOCompliant, "%+v", it)
	}

	require.NoError(t, e.store.PutReplicas(context.Background(), "shop", []ferry.Replica{
		{Group: "shop", Resource: "db-root", Kind: "volume", Site: "site-b", Backend: "ceph-b", State: ferry.ReplicaOutOfSync, LagSecs: 600, Observed: now},
	}))
	r = e.do("GET", "/v1/groups/shop/replication", "")
	require.NoError(t, json.Unmarshal(r.body, &got))
	var lagging int
	for _, it := range got.Items {
		if it.Site == "site-b" {
			require.False(t, it.RPOCompliant)
			lagging++
		}
	}
	require.Equal(t, 1, lagging)
}

// finishedRun stores the record of a run that has ended.
func (e *env) finishedRun(id, group, state string, created time.Time) ferry.Run {
	e.t.Helper()
	rpo, rto, lost := 2.5, 41.0, int64(0)
	ended := created.Add(41 * time.Second)
	start := created.Add(time.Second)
	stepEnd := start.Add(3 * time.Second)
	r := ferry.Run{
		ID: id, WorkflowID: "ferry-group-" + group, Kind: ferry.KindFailover, Group: group, Site: "site-b",
		Mode: ferry.ModePlanned, State: state, RequestedBy: "alice", Created: created, Ended: &ended,
		RPOSeconds: &rpo, RTOSeconds: &rto, WritesLost: &lost,
		Steps: []ferry.Step{
			{Name: "precheck", State: ferry.StepCompleted, Started: &start, Ended: &stepEnd, Attempts: 1},
			{Name: "promote", State: ferry.StepCompleted, Started: &stepEnd, Ended: &ended, Attempts: 2, Note: "retried | once"},
		},
		Approvals: []ferry.Approval{{By: "bob", At: start, Comment: "go"}},
		Events:    []ferry.Event{{Action: "pause", By: "carol", At: stepEnd, Step: "promote"}},
		Flags:     []string{"crash-consistent"},
	}
	require.NoError(e.t, e.store.FinishRun(context.Background(), r))
	return r
}

func TestRunRecords(t *testing.T) {
	e := newEnv(t, nil)
	e.seed("shop", "crm")
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e.finishedRun("run-1", "shop", ferry.RunCompleted, t0)
	e.finishedRun("run-2", "crm", ferry.RunRolledBack, t0.Add(time.Minute))

	r := e.do("GET", "/v1/runs/run-1", "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var run ferry.Run
	require.NoError(t, json.Unmarshal(r.body, &run))
	require.Equal(t, ferry.RunCompleted, run.State)
	require.Len(t, run.Steps, 2)

	requireProblem(t, e.do("GET", "/v1/runs/nope", ""), http.StatusNotFound, "")
	requireProblem(t, e.do("GET", "/v1/runs/nope/report", ""), http.StatusNotFound, "")
	requireProblem(t, e.do("POST", "/v1/runs/nope/approve", ""), http.StatusNotFound, "")

	var page struct {
		Items []ferry.Run `json:"items"`
	}
	r = e.do("GET", "/v1/runs", "")
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Items, 2)
	require.Equal(t, "run-2", page.Items[0].ID, "newest first")

	r = e.do("GET", "/v1/runs?group=shop&state=completed&kind=failover", "")
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, "run-1", page.Items[0].ID)

	r = e.do("GET", "/v1/runs?state=rolled_back&site=site-b", "")
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, "run-2", page.Items[0].ID)

	// Steering an ended run is a conflict, with or without Temporal.
	p := requireProblem(t, e.do("POST", "/v1/runs/run-1/approve", `{"by":"bob"}`), http.StatusConflict, "")
	require.Contains(t, p["detail"], "run has ended")
	require.Equal(t, "run-1", p["run_id"])

	// Reports.
	r = e.do("GET", "/v1/runs/run-1/report", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	r = e.do("GET", "/v1/runs/run-1/report", "", "Accept", "text/markdown")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "text/markdown; charset=utf-8", r.header.Get("Content-Type"))
	md := string(r.body)
	for _, want := range []string{
		"# Ferry failover of group shop: completed",
		"| Mode | planned |",
		"| Requested by | alice |",
		"| RPO (data-loss window) | 2.5 s |",
		"| RTO (start to verified service) | 41.0 s |",
		"| Writes lost | 0 |",
		"- bob at 2025-03-01T12:00:01Z: go",
		"| Step | State | Started | Duration | Attempts | Error / note |",
		"| precheck | completed | 2025-03-01T12:00:01Z | 3s | 1 |  |",
		`| promote | completed | 2025-03-01T12:00:04Z | 37s | 2 | retried \| once |`,
		"- crash-consistent",
		"- 2025-03-01T12:00:04Z: pause by carol (step promote)",
	} {
		require.Contains(t, md, want)
	}
}

// panicky is a store whose ListSites panics.
type panicky struct{ *store.Store }

func (panicky) ListSites(context.Context, ferry.Page) ([]ferry.Site, string, error) {
	panic("boom")
}

func TestPanicIsA500Problem(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, nil, func(d *server.Deps) {
		d.Store = panicky{d.Store.(*store.Store)}
		d.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	p := requireProblem(t, e.do("GET", "/v1/sites", ""), http.StatusInternalServerError, "")
	require.NotContains(t, p["detail"], "boom", "the panic stays in the log")
	require.Contains(t, logs.String(), "boom")
	require.Contains(t, logs.String(), "request_id=")
	// The server still answers.
	require.Equal(t, http.StatusOK, e.do("GET", "/healthz", "").status)
}
