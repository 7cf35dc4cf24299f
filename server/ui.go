package server

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The dashboard is plain HTML, CSS and JavaScript embedded in the binary:
// no build step, no separate front-end server, nothing loaded from
// elsewhere. Its files hold no data; the page asks for a token, keeps it in
// sessionStorage, and calls the API with it like any other client.
//
//go:embed ui
var uiEmbed embed.FS

var uiFiles = func() fs.FS {
	sub, err := fs.Sub(uiEmbed, "ui")
	if err != nil {
		panic("server: dashboard assets: " + err.Error())
	}
	return sub
}()

// uiTypes are the content types of the dashboard's files, fixed here rather
// than read from the system's MIME tables, which differ between machines.
var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// uiCSP is the dashboard's Content-Security-Policy: scripts, styles,
// images and API calls from this origin only, no plugins, no framing of the
// dashboard. Two allowances, both for the run report the page shows in a
// sandboxed iframe (srcdoc, which inherits this policy): its inline styles
// ('unsafe-inline' for styles only, never scripts) and data: images.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// toDashboard sends a browser to the dashboard.
func (s *server) toDashboard(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/", http.StatusFound)
}

// dashboard serves the dashboard's embedded files; /ui/ is its page.
// Anything else, including a path that is not a file of the dashboard,
// answers 404 (the page routes with the URL's fragment, never its path).
func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name == "" {
		name = "index.html"
	}
	ctype, known := uiTypes[path.Ext(name)]
	if !known || !fs.ValidPath(name) {
		s.error(w, r, errRouteNotFound)
		return
	}
	data, err := fs.ReadFile(uiFiles, name)
	if err != nil {
		s.error(w, r, errRouteNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Served from the binary: a new binary may bring new files, so the
	// browser asks again each time (cheap, and never a stale page).
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}
