package server_test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUIAssets: the dashboard's files are served from the binary without a
// token, each with its content type and a Content-Security-Policy that
// allows nothing from elsewhere; anything that is not one of its files
// answers 404 as a problem.
func TestUIAssets(t *testing.T) {
	e := newEnv(t, nil)
	pages := map[string]string{
		"/ui/":           "text/html; charset=utf-8",
		"/ui/index.html": "text/html; charset=utf-8",
		"/ui/app.js":     "text/javascript; charset=utf-8",
		"/ui/style.css":  "text/css; charset=utf-8",
	}
	bodies := map[string]string{}
	for path, ctype := range pages {
		r := e.as("", http.MethodGet, path, "")
		require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
		require.Equal(t, ctype, r.header.Get("Content-Type"), path)
		require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), path)
		csp := r.header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			require.Contains(t, csp, d, path)
		}
		// Only this origin: no scheme, host or wildcard anywhere in it.
		require.NotRegexp(t, `https?:|\*|//`, csp, path)
		require.NotContains(t, regexp.MustCompile(`script-src[^;]*`).FindString(csp), "unsafe", "scripts run from the dashboard's own files only")
		bodies[path] = string(r.body)
	}
	require.Equal(t, bodies["/ui/"], bodies["/ui/index.html"])

	// The page loads nothing from elsewhere: every src and href is local.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(bodies["/ui/"], -1) {
		require.True(t, strings.HasPrefix(m[1], "/ui/") || strings.HasPrefix(m[1], "#") || m[1] == "data:,", "external reference %q", m[1])
	}

	// Data from the API reaches the page as text only: the script never
	// parses strings as markup or code.
	js := bodies["/ui/app.js"]
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		require.Falsef(t, strings.Contains(js, sink), "app.js uses %s", sink)
	}
	// Every element the script looks up is on the page.
	for _, m := range regexp.MustCompile(`\$\('([a-z-]+)'\)`).FindAllStringSubmatch(js, -1) {
		require.Contains(t, bodies["/ui/"], `id="`+m[1]+`"`, "app.js uses #%s", m[1])
	}
	// The token is kept in the tab's session only, never in a URL.
	require.True(t, strings.Contains(js, "sessionStorage"), "app.js keeps the token in sessionStorage")
	require.False(t, strings.Contains(js, "localStorage"), "app.js uses localStorage")

	for _, path := range []string{"/ui/nope.js", "/ui/runs/0123", "/ui/app.js.map", "/ui/index.txt", "/ui/ui/app.js"} {
		r := e.as("", http.MethodGet, path, "")
		requireProblem(t, r, http.StatusNotFound, "")
		require.Empty(t, r.header.Get("Content-Security-Policy"), path)
	}
}

// TestUIRedirectsAndWhoami: / and /ui send a browser to the dashboard
// without a token; whoami tells the page what the token may do and where
// the Temporal UI is.
func TestUIRedirectsAndWhoami(t *testing.T) {
	e := newEnv(t, nil)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/ui"} {
		resp, err := noFollow.Get(e.url + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode, path)
		require.Equal(t, "/ui/", resp.Header.Get("Location"), path)
	}

	requireProblem(t, e.as("", http.MethodGet, "/v1/whoami", ""), http.StatusUnauthorized, "")
	w := e.do(http.MethodGet, "/v1/whoami", "").json(t)
	require.Equal(t, "http://ui.example:8233", w["temporal_ui_url"])
	require.Equal(t, "default", w["namespace"])
	var roles []string
	for _, r := range w["roles"].([]any) {
		roles = append(roles, r.(string))
	}
	require.True(t, slices.Equal([]string{"admin", "operator", "viewer"}, roles), "%v", roles)
}
