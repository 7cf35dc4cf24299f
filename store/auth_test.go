package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/store/storetest"
)

func newToken(t *testing.T, name, role, project string) (ferry.Token, string, []byte) {
	t.Helper()
	tok, secret, hash, err := ferry.NewToken(ferry.Token{Name: name, Role: role, Project: project, CreatedBy: "test"}, time.Now())
	require.NoError(t, err)
	return tok, secret, hash
}

func TestTokensAreKeptAsHashesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	tok, secret, hash := newToken(t, "ops", ferry.RoleOperator, "retail")
	require.NoError(t, s.CreateToken(ctx, tok, hash))

	// Every column of every row, as text: the secret is in none of them,
	// and the hash is SHA-256 of the secret.
	rows, err := s.Pool().Query(ctx, `SELECT t::text, encode(hash, 'hex') FROM auth_tokens t`)
	require.NoError(t, err)
	var n int
	for rows.Next() {
		var row, hexHash string
		require.NoError(t, rows.Scan(&row, &hexHash))
		require.NotContains(t, row, secret)
		require.NotContains(t, row, strings.TrimPrefix(secret, ferry.TokenPrefix))
		require.Equal(t, fmt.Sprintf("%x", ferry.HashToken(secret)), hexHash)
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 1, n)

	got, err := s.TokenByHash(ctx, ferry.HashToken(secret))
	require.NoError(t, err)
	require.Equal(t, tok, got)
	_, err = s.TokenByHash(ctx, ferry.HashToken(secret+"x"))
	requireErr(t, err, ferry.ENotFound, "")
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	a, _, ha := newToken(t, "ci", ferry.RoleOperator, "")
	require.NoError(t, s.CreateToken(ctx, a, ha))

	// A name is unique among unrevoked tokens.
	dup, _, hd := newToken(t, "ci", ferry.RoleViewer, "")
	requireErr(t, s.CreateToken(ctx, dup, hd), ferry.EConflict, "name")
	// Validation names the field.
	bad, _, hb := newToken(t, "x", ferry.RoleAdmin, "retail")
	requireErr(t, s.CreateToken(ctx, bad, hb), ferry.EInvalid, "project")
	bad, _, hb = newToken(t, "Not A Name", ferry.RoleViewer, "")
	requireErr(t, s.CreateToken(ctx, bad, hb), ferry.EInvalid, "name")
	bad, _, hb = newToken(t, "y", "root", "")
	requireErr(t, s.CreateToken(ctx, bad, hb), ferry.EInvalid, "role")

	at := time.Now().UTC().Truncate(time.Microsecond)
	rev, err := s.RevokeToken(ctx, a.ID, at)
	require.NoError(t, err)
	require.Equal(t, at, *rev.RevokedAt)
	require.False(t, rev.Active(time.Now()))
	// Revoking again keeps the first time.
	rev2, err := s.RevokeToken(ctx, a.ID, at.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, at, *rev2.RevokedAt)
	_, err = s.RevokeToken(ctx, "tok_nope", at)
	requireErr(t, err, ferry.ENotFound, "")
	// The name is free again.
	require.NoError(t, s.CreateToken(ctx, dup, hd))

	// last_used_at is written at most once a minute.
	require.NoError(t, s.TouchToken(ctx, dup.ID, at))
	require.NoError(t, s.TouchToken(ctx, dup.ID, at.Add(30*time.Second)))
	got, err := s.GetToken(ctx, dup.ID)
	require.NoError(t, err)
	require.Equal(t, at, *got.LastUsedAt)
	require.NoError(t, s.TouchToken(ctx, dup.ID, at.Add(2*time.Minute)))
	got, err = s.GetToken(ctx, dup.ID)
	require.NoError(t, err)
	require.Equal(t, at.Add(2*time.Minute), *got.LastUsedAt)

	// Newest first, paged.
	list, next, err := s.ListTokens(ctx, ferry.Page{Limit: 1})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, dup.ID, list[0].ID)
	list, next, err = s.ListTokens(ctx, ferry.Page{Limit: 1, Token: next})
	require.NoError(t, err)
	require.Equal(t, a.ID, list[0].ID)
	require.Empty(t, next)
}

func TestBootstrapTokenCreatesOneAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)

	// Bootstraps racing on an empty install: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, _, h := newToken(t, fmt.Sprintf("root-%d", i), ferry.RoleAdmin, "")
			errs[i] = s.BootstrapToken(ctx, tok, h, false)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		requireErr(t, err, ferry.EConflict, "")
	}
	require.Equal(t, 1, won)

	tok, _, h := newToken(t, "again", ferry.RoleAdmin, "")
	require.ErrorContains(t, s.BootstrapToken(ctx, tok, h, false), "--force")
	require.NoError(t, s.BootstrapToken(ctx, tok, h, true))
	op, _, h := newToken(t, "op", ferry.RoleOperator, "")
	requireErr(t, s.BootstrapToken(ctx, op, h, true), ferry.EInvalid, "role")

	// With every admin token revoked, a bootstrap works again.
	list, _, err := s.ListTokens(ctx, ferry.Page{})
	require.NoError(t, err)
	for _, tk := range list {
		_, err := s.RevokeToken(ctx, tk.ID, time.Now())
		require.NoError(t, err)
	}
	tok, _, h = newToken(t, "fresh", ferry.RoleAdmin, "")
	require.NoError(t, s.BootstrapToken(ctx, tok, h, false))
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []int64
	for i := range 5 {
		id, err := s.AppendAudit(ctx, ferry.AuditEntry{
			At: t0.Add(time.Duration(i) * time.Minute), Method: "POST", Path: "/v1/runs",
			TokenID: fmt.Sprintf("tok_%d", i%2), TokenName: fmt.Sprintf("name-%d", i%2), Role: ferry.RoleOperator,
			RemoteAddr: "127.0.0.1:1", RequestID: fmt.Sprint(i),
		})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, s.CompleteAudit(ctx, ids[4], 201, "run-1"))
	requireErr(t, s.CompleteAudit(ctx, 999999, 200, ""), ferry.ENotFound, "")

	all, next, err := s.ListAudit(ctx, ferry.AuditFilter{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, all, 5)
	require.Equal(t, ids[4], all[0].ID, "newest first")
	require.Equal(t, 201, all[0].Status)
	require.Equal(t, "run-1", all[0].RunID)
	require.Equal(t, 0, all[1].Status, "not completed yet")

	// By token id or name, since a time, paged.
	byID, _, err := s.ListAudit(ctx, ferry.AuditFilter{Token: "tok_1"})
	require.NoError(t, err)
	require.Len(t, byID, 2)
	byName, _, err := s.ListAudit(ctx, ferry.AuditFilter{Token: "name-0"})
	require.NoError(t, err)
	require.Len(t, byName, 3)
	since, _, err := s.ListAudit(ctx, ferry.AuditFilter{Since: t0.Add(3 * time.Minute)})
	require.NoError(t, err)
	require.Len(t, since, 2)
	var paged []int64
	p := ferry.Page{Limit: 2}
	for {
		es, next, err := s.ListAudit(ctx, ferry.AuditFilter{Page: p})
		require.NoError(t, err)
		for _, e := range es {
			paged = append(paged, e.ID)
		}
		if next == "" {
			break
		}
		p.Token = next
	}
	require.Equal(t, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}, paged)
	_, _, err = s.ListAudit(ctx, ferry.AuditFilter{Page: ferry.Page{Token: "garbage"}})
	requireErr(t, err, ferry.EInvalid, "page_token")
}

func TestRunsKeepStarterAndProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	seed(t, s) // group shop, project retail
	require.NoError(t, s.CreateRun(ctx, ferry.Run{ID: "r1", Kind: ferry.KindFailover, Group: "shop",
		State: ferry.RunRunning, StartedBy: "alice-token"}))
	// The workflow's final record knows neither: both are kept.
	require.NoError(t, s.FinishRun(ctx, ferry.Run{ID: "r1", Kind: ferry.KindFailover, Group: "shop", State: ferry.RunCompleted}))
	r, err := s.GetRun(ctx, "r1")
	require.NoError(t, err)
	require.Equal(t, "alice-token", r.StartedBy)
	require.Equal(t, "retail", r.Project)

	// A run written first by a workflow (an evacuation's child) gets its
	// group's project too; a run without a group has none.
	require.NoError(t, s.FinishRun(ctx, ferry.Run{ID: "r2", Kind: ferry.KindFailover, Group: "shop", State: ferry.RunCompleted}))
	require.NoError(t, s.CreateRun(ctx, ferry.Run{ID: "r3", Kind: ferry.KindEvacuate, Site: "east", State: ferry.RunRunning}))
	retail, _, err := s.ListRuns(ctx, ferry.RunFilter{Project: "retail"})
	require.NoError(t, err)
	require.Len(t, retail, 2)
	for _, r := range retail {
		require.Equal(t, "retail", r.Project)
	}
	other, _, err := s.ListRuns(ctx, ferry.RunFilter{Project: "finance"})
	require.NoError(t, err)
	require.Empty(t, other)
}

func TestListProjectGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.New(t)
	seed(t, s)
	g := testGroup("books")
	g.Project = "finance"
	_, err := s.PutGroup(ctx, g)
	require.NoError(t, err)
	g = testGroup("loans")
	g.Project = "finance"
	_, err = s.PutGroup(ctx, g)
	require.NoError(t, err)

	gs, next, err := s.ListProjectGroups(ctx, "finance", ferry.Page{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, "books", gs[0].Name)
	gs, next, err = s.ListProjectGroups(ctx, "finance", ferry.Page{Limit: 1, Token: next})
	require.NoError(t, err)
	require.Equal(t, "loans", gs[0].Name)
	require.Empty(t, next)
	gs, _, err = s.ListProjectGroups(ctx, "retail", ferry.Page{})
	require.NoError(t, err)
	require.Len(t, gs, 1)
	require.Equal(t, "shop", gs[0].Name)
	all, _, err := s.ListGroups(ctx, ferry.Page{})
	require.NoError(t, err)
	require.Len(t, all, 3)
}
