package apiclient_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store/storetest"
)

func TestClientAgainstServer(t *testing.T) {
	st := storetest.New(t)
	srv := httptest.NewServer(server.New(server.Deps{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	c := apiclient.New(srv.URL+"/", nil, apiclient.WithToken(storetest.AdminToken(t, st)))
	ctx := context.Background()

	require.NoError(t, c.Health(ctx))
	err := c.Ready(ctx)
	require.True(t, apiclient.IsStatus(err, http.StatusServiceUnavailable), "no temporal: %v", err)

	for _, name := range []string{"site-a", "site-b"} {
		s, created, err := c.PutSite(ctx, ferry.Site{Name: name})
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, name, s.Name)
	}
	_, created, err := c.PutSite(ctx, ferry.Site{Name: "site-a", Description: "x"})
	require.NoError(t, err)
	require.False(t, created)

	page, err := c.ListSites(ctx, apiclient.ListOptions{Limit: 1})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.NotEmpty(t, page.NextPageToken)
	page, err = c.ListSites(ctx, apiclient.ListOptions{Limit: 1, PageToken: page.NextPageToken})
	require.NoError(t, err)
	require.Equal(t, "site-b", page.Items[0].Name)

	_, _, err = c.PutBackend(ctx, ferry.Backend{Name: "ceph-a", Site: "site-a", Type: "rbd"})
	require.NoError(t, err)
	g := ferry.Group{Name: "shop", PrimarySite: "site-a", DRSite: "site-b", RPOSeconds: 60,
		Volumes: []ferry.Volume{{Name: "v", Backend: "ceph-a"}},
		Tiers:   []ferry.Tier{{Name: "t", Servers: []ferry.Server{{Name: "s", Volumes: []string{"v"}}}}}}
	got, created, err := c.PutGroup(ctx, g)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, ferry.QuiesceAbort, got.QuiescePolicy)
	rep, err := c.GroupReplication(ctx, "shop")
	require.NoError(t, err)
	require.Equal(t, 60, rep.RPOSeconds)
	require.Empty(t, rep.Items)

	// Problems come back typed, with the field.
	_, err = c.StartRun(ctx, apiclient.StartRunRequest{Kind: "failover", Group: "nope"})
	var p *apiclient.ProblemError
	require.True(t, errors.As(err, &p), "%v", err)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Equal(t, "group", p.Field)
	require.Contains(t, err.Error(), "HTTP 422")

	_, err = c.GetRun(ctx, "nope")
	require.True(t, apiclient.IsStatus(err, http.StatusNotFound))
	_, err = c.Steer(ctx, "nope", apiclient.ActionApprove, apiclient.SteerRequest{By: "me"})
	require.True(t, apiclient.IsStatus(err, http.StatusNotFound))
	_, err = c.Report(ctx, "nope", true)
	require.True(t, apiclient.IsStatus(err, http.StatusNotFound))

	require.NoError(t, st.FinishRun(ctx, ferry.Run{ID: "r1", WorkflowID: "w", Kind: "failover", Group: "shop", State: ferry.RunCompleted}))
	runs, err := c.ListRuns(ctx, apiclient.RunFilter{Group: "shop", State: ferry.RunCompleted})
	require.NoError(t, err)
	require.Len(t, runs.Items, 1)
	runs, err = c.ListRuns(ctx, apiclient.RunFilter{Group: "crm"})
	require.NoError(t, err)
	require.Empty(t, runs.Items)
	md, err := c.Report(ctx, "r1", true)
	require.NoError(t, err)
	require.Contains(t, string(md), "# Ferry failover of group shop: completed")

	err = c.DeleteSite(ctx, "site-a")
	require.True(t, apiclient.IsStatus(err, http.StatusConflict), "in use: %v", err)
	require.NoError(t, c.DeleteGroup(ctx, "shop"))
	require.NoError(t, c.DeleteBackend(ctx, "ceph-a"))
	require.NoError(t, c.DeleteSite(ctx, "site-a"))
	_, err = c.GetSite(ctx, "site-a")
	require.True(t, apiclient.IsStatus(err, http.StatusNotFound))
	_, err = c.GetGroup(ctx, "shop")
	require.True(t, apiclient.IsStatus(err, http.StatusNotFound))
	_, err = c.GetBackend(ctx, "ceph-a")
	require.True(t, apiclient.IsStatus(err, http.StatusNotFound))
	bs, err := c.ListBackends(ctx, apiclient.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, bs.Items)
	gs, err := c.ListGroups(ctx, apiclient.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, gs.Items)
}
