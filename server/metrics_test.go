package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/server"
)

// The metrics name every project's groups, so only a token without a
// project reads them; a project's viewer gets 403 naming why.
func TestMetricsRefuseProjectTokens(t *testing.T) {
	e := newEnv(t, nil, func(d *server.Deps) {
		d.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ferry_runs{kind=\"drill\",state=\"completed\"} 1\n"))
		})
	})
	all := e.roleTokens("")
	scoped := e.roleTokens("retail")

	r := e.as(all.viewer, "GET", "/metrics", "")
	require.Equal(t, 200, r.status, "%s", r.body)
	require.Contains(t, string(r.body), "ferry_runs")

	r = e.as(scoped.viewer, "GET", "/metrics", "")
	require.Equal(t, 403, r.status, "%s", r.body)
	require.Contains(t, r.json(t)["detail"], "bound to project retail")
	require.NotContains(t, string(r.body), "ferry_runs")

	r = e.as("", "GET", "/metrics", "")
	require.Equal(t, 401, r.status)
}
