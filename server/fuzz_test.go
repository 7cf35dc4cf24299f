package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
)

// The fuzz targets send any body, name and query to the real handler over
// a real store seeded with the demo inventory. The property for every
// input: no 5xx, a problem+json answer for every refusal, and a refused
// request leaves the store as it was. One store serves every input of a
// target; accepted requests change it, which only widens what later inputs
// meet. `make test` runs the seeds; `make fuzz` explores.

// Run records the steering and list targets meet: one unfinished whose
// workflow Temporal does not know, one finished. Their ids are shaped like
// Temporal's run ids, as every stored run's is.
const (
	fuzzRunLive  = "0193a5e0-0000-7000-8000-00000000f001"
	fuzzRunEnded = "0193a5e0-0000-7000-8000-00000000f002"
)

type fuzzAPI struct {
	h  http.Handler
	st *store.Store
	// noTemporal is set when the handler has no Temporal client: a request
	// that passes every check then meets the 503 that says so.
	noTemporal bool
	// token is an admin token of st.
	token string
}

// request is a request to the API with the admin token.
func (a *fuzzAPI) request(method, target string, body []byte) *http.Request {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	return req
}

// newFuzzAPI serves the API over a fresh store holding the demo inventory
// and two run records. With a Temporal client, requests may create
// schedules and query workflows; no worker is ever needed.
func newFuzzAPI(f testing.TB, tc client.Client) *fuzzAPI {
	f.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := storetest.New(f)
	require.NoError(f, st.ApplyInventory(ctx, demo.Inventory()))
	require.NoError(f, st.CreateRun(ctx, ferry.Run{
		ID: fuzzRunLive, WorkflowID: "ferry-group-fuzz-never-started", Kind: ferry.KindFailover,
		Group: "shop", Site: "site-b", Mode: ferry.ModePlanned, State: ferry.RunRunning,
	}))
	require.NoError(f, st.CreateRun(ctx, ferry.Run{
		ID: fuzzRunEnded, WorkflowID: "ferry-group-fuzz-ended", Kind: ferry.KindFailover,
		Group: "crm", Site: "site-b", Mode: ferry.ModePlanned, State: ferry.RunRunning,
	}))
	end := time.Now().UTC()
	require.NoError(f, st.FinishRun(ctx, ferry.Run{
		ID: fuzzRunEnded, WorkflowID: "ferry-group-fuzz-ended", Kind: ferry.KindFailover,
		Group: "crm", Site: "site-b", Mode: ferry.ModePlanned, State: ferry.RunCompleted, Ended: &end,
	}))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("FERRY_FUZZ_LOG") != "" { // the server's log, to see why it answered 5xx
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	h := server.New(server.Deps{
		Store:     st,
		Temporal:  tc,
		Namespace: "default",
		// Nobody polls this queue: a start is recorded and goes no further.
		TaskQueue: "fuzz-" + suffix(),
		Logger:    logger,
	})
	return &fuzzAPI{h: h, st: st, noTemporal: tc == nil, token: storetest.AdminToken(f, st)}
}

// fuzzTemporal is the package's dev server, started once.
func fuzzTemporal(f *testing.F) client.Client {
	f.Helper()
	devOnce.Do(func() { dev, devErr = devserver.StartEphemeral(context.Background()) })
	require.NoError(f, devErr)
	return dev.Client()
}

// snapshot is everything the API can write to the store, as JSON.
func (a *fuzzAPI) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var all struct {
		Sites    []ferry.Site
		Backends []ferry.Backend
		Groups   []ferry.Group
		Replicas map[string][]ferry.Replica
		Runs     []ferry.Run
	}
	p := ferry.Page{Limit: store.MaxPageLimit}
	sites, _, err := a.st.ListSites(ctx, p)
	require.NoError(t, err)
	backends, _, err := a.st.ListBackends(ctx, p)
	require.NoError(t, err)
	groups, _, err := a.st.ListGroups(ctx, p)
	require.NoError(t, err)
	runs, _, err := a.st.ListRuns(ctx, ferry.RunFilter{Page: p})
	require.NoError(t, err)
	all.Sites, all.Backends, all.Groups, all.Runs = sites, backends, groups, runs
	all.Replicas = map[string][]ferry.Replica{}
	for _, g := range groups {
		rs, err := a.st.ListReplicas(ctx, g.Name)
		require.NoError(t, err)
		all.Replicas[g.Name] = rs
	}
	b, err := json.Marshal(all)
	require.NoError(t, err)
	return string(b)
}

// do sends one request and checks the property; it returns the status.
func (a *fuzzAPI) do(t *testing.T, method, path, rawQuery string, body []byte) int {
	t.Helper()
	before := a.snapshot(t)
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	// Set after parsing, so any bytes reach the router as a client could
	// send them.
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery = path, "", rawQuery
	req.RequestURI = req.URL.RequestURI()
	req.Header.Set("Content-Type", "application/json")
	// An admin's token: the fuzz is of what the API does with a request
	// it lets through.
	req.Header.Set("Authorization", "Bearer "+a.token)
	ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req.WithContext(ctx))

	what := method + " " + req.URL.RequestURI()
	if a.noTemporal && rec.Code == http.StatusServiceUnavailable &&
		strings.Contains(rec.Body.String(), "no temporal client is configured") {
		// Every check passed; only Temporal was missing. Nothing was written.
		require.Equal(t, before, a.snapshot(t), "%s: refused for want of Temporal, yet the store changed", what)
		return rec.Code
	}
	require.Less(t, rec.Code, 500, "%s with body %q answered %d: %s", what, trim(body), rec.Code, rec.Body.String())
	if rec.Code >= 400 {
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), "%s answered %d: %s", what, rec.Code, rec.Body.String())
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), "%s: the problem is not JSON: %s", what, rec.Body.String())
		require.Equal(t, rec.Code, p.Status)
		require.NotEmpty(t, p.Title)
		require.Equal(t, before, a.snapshot(t), "%s with body %q was refused (%d: %s) but the store changed",
			what, trim(body), rec.Code, rec.Body.String())
	}
	return rec.Code
}

func trim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func jsonOf(f *testing.F, v any) []byte {
	f.Helper()
	b, err := json.Marshal(v)
	require.NoError(f, err)
	return b
}

// badBodies are refusals every body target starts from.
var badBodies = []string{
	``, `null`, `{}`, `[]`, `"x"`, `1e999`, `{"name":`, `{} {}`, `{"name":"x"}garbage`,
	`{"unknown":1}`, `{"name":1}`, `{"name":"\u0000"}`, `{"name":"a\u0000b"}`, "{\"name\":\"\xff\xfe\"}",
	`{"name":"` + strings.Repeat("a", ferry.MaxNameLen+1) + `"}`, `{"name":"UPPER"}`, `{"name":"-x"}`,
	`{"description":"\u0000"}`, `{"labels":{"":"x"}}`, `{"labels":{"k":"\u0000"}}`, `{"labels":{"\u0000":"v"}}`,
	`{"labels":[1]}`, `{"members":"x"}`, `{"members":[null]}`, `{"members":["\u0000"]}`,
	`{"rpo_seconds":-1}`, `{"rpo_seconds":1e30}`, `{"rpo_seconds":9223372036854775808}`,
	`{"tiers":[{"name":"t","servers":[{"name":"s","volumes":["\u0000"]}]}]}`,
	`{"hooks":[{"name":"h","command":["\u0000"]}]}`, `{"project":"\u0000"}`,
	`{"drill_schedule":"\u0000 * * * *"}`, `{"dns_records":[{"name":"\u0000","type":"A"}]}`,
}

// FuzzPutSite, FuzzPutBackend and FuzzPutGroup: PUT /v1/{kind}/{name}.
func FuzzPutSite(f *testing.F)    { fuzzPut(f, "sites", demoItems(f, "sites")) }
func FuzzPutBackend(f *testing.F) { fuzzPut(f, "backends", demoItems(f, "backends")) }
func FuzzPutGroup(f *testing.F)   { fuzzPut(f, "groups", demoItems(f, "groups")) }

// seed is a path name and a body.
type seed struct {
	name string
	body []byte
}

// demoItems returns the demo inventory's items of a kind, and variants of
// them that break a limit or a reference.
func demoItems(f *testing.F, kind string) []seed {
	inv := demo.Inventory()
	var out []seed
	add := func(name string, v any) { out = append(out, seed{name, jsonOf(f, v)}) }
	switch kind {
	case "sites":
		for _, s := range inv.Sites {
			add(s.Name, s)
		}
	case "backends":
		for _, b := range inv.Backends {
			add(b.Name, b)
			many := b
			many.Members = make([]string, ferry.MaxMembers+1)
			for i := range many.Members {
				many.Members[i] = "member-" + strconv.Itoa(i)
			}
			add(b.Name, many)
		}
	case "groups":
		for _, g := range inv.Groups {
			add(g.Name, g)
			cron := g
			cron.DrillSchedule = "0 3 * * 1"
			add(g.Name, cron)
			noSite := g
			noSite.DRSite = "site-nowhere"
			add(g.Name, noSite)
			tooMany := g
			tooMany.Volumes = make([]ferry.Volume, ferry.MaxVolumesPerGroup+1)
			for i := range tooMany.Volumes {
				tooMany.Volumes[i] = ferry.Volume{Name: "v" + strconv.Itoa(i), Backend: "a-block", SizeGB: 1}
			}
			add(g.Name, tooMany)
		}
	}
	return out
}

func fuzzPut(f *testing.F, kind string, valid []seed) {
	for _, v := range valid {
		f.Add(v.name, v.body)
		f.Add("other-name", v.body) // the body's name differs from the path's
	}
	for _, b := range badBodies {
		f.Add("fuzz-item", []byte(b))
	}
	f.Add("", []byte(`{}`))
	f.Add("a/b", []byte(`{}`))
	f.Add("\x00", []byte(`{}`))
	f.Add("\xff", []byte(`{}`))
	f.Add("x", bytes.Repeat([]byte(" "), 1<<20+1)) // over the body limit
	f.Add("x", append([]byte(`{"name":"x","description":"`), append(bytes.Repeat([]byte("d"), 1<<20), `"}`...)...))
	a := newFuzzAPI(f, nil)
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		a.do(t, http.MethodPut, "/v1/"+kind+"/"+name, "", body)
	})
}

// FuzzStartRun: POST /v1/runs. Without a Temporal client a request that
// passes every check is answered 503 and nothing starts; the target needs
// no worker and no dev server.
func FuzzStartRun(f *testing.F) {
	for _, b := range []string{
		`{"kind":"failover","group":"shop"}`,
		`{"kind":"failover","group":"crm","mode":"unplanned","target":"site-b","requested_by":"fuzz"}`,
		`{"kind":"failover","group":"shop","dry_run":true}`,
		`{"kind":"failover","group":"shop","target":"site-a"}`,
		`{"kind":"failover","group":"shop","target":"\u0000"}`,
		`{"kind":"failover","group":"\u0000"}`,
		`{"kind":"failover","group":"shop","mode":"sideways"}`,
		`{"kind":"failover","group":"shop","options":{"quiesce_policy":"maybe"}}`,
		`{"kind":"failover","group":"shop","options":{"hold_seconds":-1,"concurrency":-5}}`,
		`{"kind":"failover","group":"shop","site":"site-a"}`,
		`{"kind":"drill","group":"shop","options":{"hold_seconds":99999999}}`,
		`{"kind":"drill","group":"crm"}`,
		`{"kind":"evacuate","site":"site-a","options":{"concurrency":0}}`,
		`{"kind":"evacuate","site":"\u0000","mode":"unplanned"}`,
		`{"kind":"backend-failover","backend":"a-block"}`,
		`{"kind":"backend-failover","backend":"\u0000"}`,
		`{"kind":"share-promote","share":"shop-media"}`,
		`{"kind":"share-promote","share":"\u0000","group":"shop"}`,
		`{"kind":"protect","group":"shop"}`, `{"kind":"unprotect","group":"shop"}`,
		`{"kind":"reprotect","group":"shop"}`, `{"kind":"failback","group":"shop"}`,
		`{"kind":"suspend","group":"shop"}`, `{"kind":"resume","group":"shop"}`,
		`{"kind":"nope"}`, `{"kind":""}`, `{"kind":"\u0000"}`, `{"kind":["failover"]}`,
		`{"kind":"failover","group":"shop","requested_by":"` + strings.Repeat("r", 1<<20) + `"}`,
	} {
		f.Add([]byte(b))
	}
	for _, b := range badBodies {
		f.Add([]byte(b))
	}
	a := newFuzzAPI(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		a.do(t, http.MethodPost, "/v1/runs", "", body)
	})
}

// FuzzSteerRun: POST /v1/runs/{id}/{action} with any id and body. The
// unfinished record's workflow does not exist, so Temporal answers at once
// and no worker is needed.
func FuzzSteerRun(f *testing.F) {
	actions := []string{"approve", "pause", "resume", "abort", "retry", "skip"}
	for i, act := range actions {
		for _, id := range []string{fuzzRunLive, fuzzRunEnded, "no-such-run", "\x00", ""} {
			f.Add(id, act, []byte(`{"by":"fuzz","comment":"c"}`))
			f.Add(id, act, []byte(badBodies[i%len(badBodies)]))
		}
	}
	f.Add(fuzzRunLive, "approve", []byte(``))
	f.Add(fuzzRunLive, "approve", []byte(`{"by":"\u0000","comment":"\u0000"}`))
	f.Add(fuzzRunLive, "approve", []byte(`{"by":1}`))
	f.Add(fuzzRunLive, "explode", []byte(`{}`))
	f.Add(fuzzRunLive, "approve", bytes.Repeat([]byte(" "), 1<<20+1))
	a := newFuzzAPI(f, fuzzTemporal(f))
	f.Fuzz(func(t *testing.T, id, action string, body []byte) {
		a.do(t, http.MethodPost, "/v1/runs/"+id+"/"+action, "", body)
	})
}

// FuzzDrillSchedule: PUT /v1/groups/{name}/drill-schedule. A cron Temporal
// takes creates a real schedule (of drills on a queue nobody polls).
func FuzzDrillSchedule(f *testing.F) {
	for _, b := range []string{
		`{"cron":"0 3 * * 1"}`, `{"cron":"0 3 * * 1","hold_seconds":60,"paused":true}`,
		`{"cron":"*/5 * * * *","paused":true}`, `{"cron":""}`, `{"cron":"0 3 * *"}`,
		`{"cron":"99 99 99 99 99","paused":true}`, `{"cron":"a b c d e","paused":true}`,
		`{"cron":"0 3 * * 1","hold_seconds":-1}`, `{"cron":"0 3 * * 1","hold_seconds":1e12}`,
		`{"cron":"0 3 * * 1","paused":"yes"}`, `{"cron":"\u0000 3 * * 1"}`, `{"cron":1}`,
	} {
		f.Add("shop", []byte(b))
		f.Add("no-such-group", []byte(b))
	}
	for _, b := range badBodies {
		f.Add("crm", []byte(b))
	}
	f.Add("\x00", []byte(`{"cron":"0 3 * * 1"}`))
	a := newFuzzAPI(f, fuzzTemporal(f))
	f.Fuzz(func(t *testing.T, group string, body []byte) {
		a.do(t, http.MethodPut, "/v1/groups/"+group+"/drill-schedule", "", body)
	})
}

// FuzzListQuery: every GET of the API with any name and query string
// (limit, page_token and the run filters).
func FuzzListQuery(f *testing.F) {
	paths := []string{
		"/v1/sites", "/v1/backends", "/v1/groups", "/v1/runs", "/v1/schedules",
		"/v1/sites/%s", "/v1/backends/%s", "/v1/groups/%s", "/v1/groups/%s/replication",
		"/v1/runs/%s", "/v1/runs/%s/report",
	}
	queries := []string{
		"", "limit=1", "limit=1000", "limit=1001", "limit=0", "limit=-1", "limit=x", "limit=99999999999999999999",
		"page_token=", "page_token=abc", "page_token=" + url.QueryEscape("bjE6c2hvcA"), "page_token=%00",
		"page_token=" + url.QueryEscape("cjE6"), "page_token=bjE6AA", "page_token=cjE6AA", "page_token=" + url.QueryEscape("cjE6eHl6fHp6eg"),
		"group=shop&state=running", "group=%00", "site=%ff", "kind=failover&state=paused",
		"kind=nope", "state=nope", "state=completed&limit=2", "format=markdown", "limit=1&limit=2", "%zz=1",
	}
	for i := range paths {
		for j, q := range queries {
			name := []string{"shop", fuzzRunLive, fuzzRunEnded, "site-a", "a-block", "\x00", "\xff", ""}[(i+j)%8]
			f.Add(uint8(i), name, q)
		}
	}
	a := newFuzzAPI(f, fuzzTemporal(f))
	f.Fuzz(func(t *testing.T, which uint8, name, rawQuery string) {
		p := paths[int(which)%len(paths)]
		a.do(t, http.MethodGet, strings.Replace(p, "%s", name, 1), rawQuery, nil)
	})
}

// TestAPILimits: the limits the fuzz targets run into, each refused with
// the status and the field a client can act on, and nothing written.
func TestAPILimits(t *testing.T) {
	a := newFuzzAPI(t, nil)
	site := func(name string) []byte { return []byte(`{"name":"` + name + `"}`) }
	longest := strings.Repeat("a", ferry.MaxNameLen)
	require.Equal(t, http.StatusCreated, a.do(t, http.MethodPut, "/v1/sites/"+longest, "", site(longest)))

	cases := []struct {
		name, method, path, query string
		body                      []byte
		status                    int
		field                     string
	}{
		{"name too long", http.MethodPut, "/v1/sites/" + longest + "a", "", site(longest + "a"), 422, "name"},
		{"body over 1 MiB", http.MethodPut, "/v1/sites/big", "",
			[]byte(`{"name":"big","description":"` + strings.Repeat("d", 1<<20) + `"}`), 413, ""},
		{"too many members", http.MethodPut, "/v1/backends/a-block", "", func() []byte {
			b := map[string]any{"name": "a-block", "site": "site-a", "type": "sim"}
			m := make([]string, ferry.MaxMembers+1)
			for i := range m {
				m[i] = "m" + strconv.Itoa(i)
			}
			b["members"] = m
			out, _ := json.Marshal(b)
			return out
		}(), 422, "members"},
		{"page too large", http.MethodGet, "/v1/runs", "limit=1001", nil, 422, "limit"},
		{"bad page token", http.MethodGet, "/v1/groups", "page_token=bjE6AA", nil, 400, ""},
		{"nul in a name", http.MethodGet, "/v1/groups/a\x00b", "", nil, 400, ""},
		{"nul in a label", http.MethodPut, "/v1/sites/s", "", []byte(`{"labels":{"k":"\u0000"}}`), 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := a.snapshot(t)
			req := a.request(c.method, "/", c.body)
			req.URL.Path, req.URL.RawQuery = c.path, c.query
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			require.Equal(t, c.status, rec.Code, rec.Body.String())
			var p struct {
				Field string `json:"field"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
			require.Equal(t, c.field, p.Field, rec.Body.String())
			require.Equal(t, before, a.snapshot(t))
		})
	}
	// Groups: volumes and servers over their limits.
	g := demo.Inventory().Groups[0]
	vols := g
	vols.Volumes = make([]ferry.Volume, ferry.MaxVolumesPerGroup+1)
	for i := range vols.Volumes {
		vols.Volumes[i] = ferry.Volume{Name: "v" + strconv.Itoa(i), Backend: "a-block", SizeGB: 1}
	}
	body, err := json.Marshal(vols)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, a.request(http.MethodPut, "/v1/groups/"+g.Name, body))
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"field":"volumes"`)
}
