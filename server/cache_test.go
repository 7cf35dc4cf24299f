package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/workflows"
)

// countingTemporal is the test's real Temporal client, counting the
// progress queries the API sends through it.
type countingTemporal struct {
	client.Client
	queries atomic.Int64
}

func (c *countingTemporal) QueryWorkflow(ctx context.Context, wfID, runID, name string, args ...any) (converter.EncodedValue, error) {
	if name == workflows.QueryProgress {
		c.queries.Add(1)
	}
	return c.Client.QueryWorkflow(ctx, wfID, runID, name, args...)
}

// countingStore is the test's real store, counting token reads and writes.
type countingStore struct {
	server.Store
	lookups, touches atomic.Int64
}

func (c *countingStore) TokenByHash(ctx context.Context, hash []byte) (ferry.Token, error) {
	c.lookups.Add(1)
	return c.Store.TokenByHash(ctx, hash)
}

func (c *countingStore) TouchToken(ctx context.Context, id string, at time.Time) error {
	c.touches.Add(1)
	return c.Store.TouchToken(ctx, id, at)
}

// clock is a test clock the caches read; it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// liveRun starts a fake failover with e's worker polling and waits, through
// Temporal and not the API, until its workflow answers the progress query.
func (e *env) liveRun(group string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/runs", `{"kind":"failover","group":"`+group+`"}`)
	require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	id := r.json(e.t)["id"].(string)
	require.Eventually(e.t, func() bool {
		v, err := e.tc.QueryWorkflow(context.Background(), workflows.GroupWorkflowID(group), id, workflows.QueryProgress)
		var run ferry.Run
		return err == nil && v.Get(&run) == nil && run.State == ferry.RunWaitingApproval
	}, 20*time.Second, 50*time.Millisecond)
	return id
}

// getRuns sends n GETs of a run at once and returns the states answered.
func (e *env) getRuns(id string, n int) []string {
	e.t.Helper()
	states := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("GET", "/v1/runs/"+id, "")
			var run ferry.Run
			if r.status == http.StatusOK && json.Unmarshal(r.body, &run) == nil {
				states[i] = run.State
			}
		}()
	}
	wg.Wait()
	return states
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestLiveRunReadsShareOneQuery: concurrent GETs of a live run cost one
// progress query, reused until the TTL passes; a steering action makes the
// next GET ask again and show it; a finished run is never asked.
func TestLiveRunReadsShareOneQuery(t *testing.T) {
	tc := &countingTemporal{Client: temporalClient(t)}
	clk := &clock{t: time.Now()}
	e := newEnv(t, tc, func(d *server.Deps) { d.Now = clk.now })
	e.tc = tc.Client
	g := "live-" + suffix()
	e.seed(g)
	e.startFakeWorker()
	id := e.liveRun(g)

	const n = 16
	require.Equal(t, repeat(ferry.RunWaitingApproval, n), e.getRuns(id, n))
	require.EqualValues(t, 1, tc.queries.Load(), "16 concurrent GETs share one query")
	require.Equal(t, repeat(ferry.RunWaitingApproval, n), e.getRuns(id, n))
	require.EqualValues(t, 1, tc.queries.Load(), "GETs within the TTL reuse the answer")

	clk.add(server.DefaultProgressTTL)
	require.Equal(t, repeat(ferry.RunWaitingApproval, n), e.getRuns(id, n))
	require.EqualValues(t, 2, tc.queries.Load(), "after the TTL one GET asks again")

	// Approving answers the run after the update, and the next GET shows
	// it at once: the clock has not moved, the cached answer is dropped.
	r := e.do("POST", "/v1/runs/"+id+"/approve", `{}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, ferry.RunRunning, r.json(t)["state"])
	require.Equal(t, repeat(ferry.RunRunning, n), e.getRuns(id, n))
	queries := tc.queries.Load()
	require.EqualValues(t, 3, queries, "the approve's own answer asked once; the GETs after it reuse that")

	// Once it has closed, Temporal's word answers, kept nowhere: no
	// query, and no cached progress hides the end, whatever the clock.
	r = e.do("POST", "/v1/runs/"+id+"/abort", `{}`)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Eventually(t, func() bool {
		// The abort's own answer may be the progress just before the
		// workflow closed, kept for the TTL like any other.
		clk.add(server.DefaultProgressTTL)
		var run ferry.Run
		r := e.do("GET", "/v1/runs/"+id, "")
		return json.Unmarshal(r.body, &run) == nil && run.State == ferry.RunAborted
	}, 20*time.Second, 50*time.Millisecond)
	queries = tc.queries.Load()
	require.Equal(t, repeat(ferry.RunAborted, n), e.getRuns(id, n))
	require.Equal(t, queries, tc.queries.Load(), "a closed run's GET asks no workflow")
}

// TestLiveRunReadsUncached: with the progress cache off, each GET asks
// (so the counting above counts what it claims to).
func TestLiveRunReadsUncached(t *testing.T) {
	tc := &countingTemporal{Client: temporalClient(t)}
	e := newEnv(t, tc, func(d *server.Deps) { d.ProgressTTL = -1 })
	e.tc = tc.Client
	g := "live-" + suffix()
	e.seed(g)
	e.startFakeWorker()
	id := e.liveRun(g)
	for range 5 {
		r := e.do("GET", "/v1/runs/"+id, "")
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	}
	require.EqualValues(t, 5, tc.queries.Load())
	require.Equal(t, http.StatusOK, e.do("POST", "/v1/runs/"+id+"/abort", `{}`).status)
}

// TestTokenCacheBound: a checked token is read from the store once per
// TTL; revoked in the store (as another API process would), it is refused
// once the TTL has passed; revoked through this API, at once.
func TestTokenCacheBound(t *testing.T) {
	clk := &clock{t: time.Now()}
	var st *countingStore
	e := newEnv(t, nil, func(d *server.Deps) {
		st = &countingStore{Store: d.Store}
		d.Store, d.Now = st, clk.now
	})
	tok := e.roleTokens("")
	for range 10 {
		require.Equal(t, http.StatusOK, e.as(tok.viewer, "GET", "/v1/sites", "").status)
	}
	require.EqualValues(t, 1, st.lookups.Load(), "one store read per token per TTL")
	require.EqualValues(t, 1, st.touches.Load(), "its use recorded once per TTL")

	// Revoked in the store, behind this process's back: still accepted
	// within the TTL, refused once it has passed.
	var viewer ferry.Token
	for _, x := range mustTokens(t, e) {
		if x.Role == ferry.RoleViewer {
			viewer = x
		}
	}
	_, err := e.store.RevokeToken(context.Background(), viewer.ID, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, e.as(tok.viewer, "GET", "/v1/sites", "").status, "within the TTL")
	clk.add(server.DefaultTokenTTL - time.Nanosecond)
	require.Equal(t, http.StatusOK, e.as(tok.viewer, "GET", "/v1/sites", "").status, "within the TTL")
	clk.add(time.Nanosecond)
	p := requireProblem(t, e.as(tok.viewer, "GET", "/v1/sites", ""), http.StatusUnauthorized, "")
	require.Contains(t, p["detail"], "was revoked")
	require.Equal(t, http.StatusUnauthorized, e.as(tok.viewer, "GET", "/v1/sites", "").status, "a refused token is not kept")

	// Revoked through this API: refused at once.
	require.Equal(t, http.StatusOK, e.as(tok.operator, "GET", "/v1/sites", "").status)
	opID := ""
	for _, x := range mustTokens(t, e) {
		if x.Role == ferry.RoleOperator {
			opID = x.ID
		}
	}
	require.Equal(t, http.StatusOK, e.as(tok.admin, "DELETE", "/v1/tokens/"+opID, "").status)
	requireProblem(t, e.as(tok.operator, "GET", "/v1/sites", ""), http.StatusUnauthorized, "")
}

func mustTokens(t *testing.T, e *env) []ferry.Token {
	t.Helper()
	ts, _, err := e.store.ListTokens(context.Background(), ferry.Page{Limit: 1000})
	require.NoError(t, err)
	return ts
}

// listCountingStore is the test's real store, counting full group reads.
type listCountingStore struct {
	server.Store
	lists atomic.Int64
}

func (c *listCountingStore) ListGroups(ctx context.Context, p ferry.Page) ([]ferry.Group, string, error) {
	c.lists.Add(1)
	return c.Store.ListGroups(ctx, p)
}

func (c *listCountingStore) GroupsVersion(ctx context.Context) (string, error) {
	return c.Store.(interface {
		GroupsVersion(context.Context) (string, error)
	}).GroupsVersion(ctx)
}

// TestGroupListKeptByVersion: GET /v1/groups reads the groups once while
// they do not change, answers the same bytes as a fresh read, and shows
// every change at once, whoever made it (this API, or another process
// writing the store as a worker does).
func TestGroupListKeptByVersion(t *testing.T) {
	var st *listCountingStore
	e := newEnv(t, nil, func(d *server.Deps) {
		st = &listCountingStore{Store: d.Store}
		d.Store = st
	})
	a, b := "a-"+suffix(), "b-"+suffix()
	e.seed(a, b)
	names := func(r response) []string {
		var page struct {
			Items []ferry.Group `json:"items"`
		}
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.NoError(t, json.Unmarshal(r.body, &page))
		var out []string
		for _, g := range page.Items {
			out = append(out, g.Name+"@"+g.ActiveSite)
		}
		return out
	}

	first := e.do("GET", "/v1/groups", "")
	require.Equal(t, []string{a + "@", b + "@"}, names(first))
	lists := st.lists.Load()
	for range 5 {
		again := e.do("GET", "/v1/groups", "")
		require.Equal(t, first.body, again.body)
		require.Equal(t, "application/json", again.header.Get("Content-Type"))
	}
	require.Equal(t, lists, st.lists.Load(), "unchanged groups are not read again")
	// Another page is kept apart.
	require.Equal(t, []string{a + "@"}, names(e.do("GET", "/v1/groups?limit=1", "")))

	ctx := context.Background()
	// Written by another process (a run's worker records where it moved
	// the group): the next list shows it.
	require.NoError(t, e.store.SetGroupActiveSite(ctx, a, "site-b"))
	require.Equal(t, []string{a + "@site-b", b + "@"}, names(e.do("GET", "/v1/groups", "")))
	// Replaced, added and deleted through this API.
	g := group(b)
	g.RPOSeconds = 120
	require.Equal(t, http.StatusOK, e.do("PUT", "/v1/groups/"+b, mustJSON(t, g)).status)
	r := e.do("GET", "/v1/groups", "")
	require.Contains(t, string(r.body), `"rpo_seconds":120`)
	c := "c-" + suffix()
	require.Equal(t, http.StatusCreated, e.do("PUT", "/v1/groups/"+c, mustJSON(t, group(c))).status)
	require.Equal(t, []string{a + "@site-b", b + "@", c + "@"}, names(e.do("GET", "/v1/groups", "")))
	require.NoError(t, e.store.DeleteGroup(ctx, a))
	require.Equal(t, []string{b + "@", c + "@"}, names(e.do("GET", "/v1/groups", "")))
	// A project-scoped token sees its own page, not the kept one.
	require.Empty(t, names(e.as(e.roleTokens("other").viewer, "GET", "/v1/groups", "")))
}
