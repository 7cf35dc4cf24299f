package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ferrydr/ferry"
)

// public marks a route anyone may call, without a token.
const public = "public"

// routeRoles is the role each route needs, by "METHOD pattern" as chi
// reports the pattern. It is the one place where access is decided: a route
// without an entry refuses every request (and New panics, and a test walks
// the routes), so no route can be added without deciding who may call it.
// Project scope is not here: a project-scoped token sees its project's
// groups and their runs only, whatever the route (scope.go). Some run kinds
// need more than the route's role (kindRoles).
var routeRoles = map[string]string{
	"GET /healthz":         public,
	"GET /readyz":          public,
	"GET /v1/openapi.json": public,
	"GET /v1/whoami":       ferry.RoleViewer,
	// Prometheus scrapes with a viewer token (docs/metrics.md): the
	// metrics name every group and site.
	"GET /metrics": ferry.RoleViewer,
	// The dashboard's pages and assets hold no data: they ask the user
	// for a token and call the API with it.
	"GET /":     public,
	"GET /ui":   public,
	"GET /ui/*": public,

	"GET /v1/sites":           ferry.RoleViewer,
	"GET /v1/sites/{name}":    ferry.RoleViewer,
	"PUT /v1/sites/{name}":    ferry.RoleAdmin,
	"DELETE /v1/sites/{name}": ferry.RoleAdmin,

	"GET /v1/backends":           ferry.RoleViewer,
	"GET /v1/backends/{name}":    ferry.RoleViewer,
	"PUT /v1/backends/{name}":    ferry.RoleAdmin,
	"DELETE /v1/backends/{name}": ferry.RoleAdmin,

	"GET /v1/groups":                          ferry.RoleViewer,
	"GET /v1/groups/{name}":                   ferry.RoleViewer,
	"PUT /v1/groups/{name}":                   ferry.RoleAdmin,
	"DELETE /v1/groups/{name}":                ferry.RoleAdmin,
	"GET /v1/groups/{name}/replication":       ferry.RoleViewer,
	"PUT /v1/groups/{name}/drill-schedule":    ferry.RoleOperator,
	"DELETE /v1/groups/{name}/drill-schedule": ferry.RoleOperator,
	"GET /v1/schedules":                       ferry.RoleViewer,

	"POST /v1/runs":            ferry.RoleOperator, // dry runs too; see kindRoles
	"GET /v1/runs":             ferry.RoleViewer,
	"GET /v1/runs/{id}":        ferry.RoleViewer,
	"GET /v1/runs/{id}/report": ferry.RoleViewer,
	"POST /v1/runs/{id}/{action:approve|pause|resume|abort|retry|skip}": ferry.RoleOperator, // see kindRoles

	"POST /v1/tokens":        ferry.RoleAdmin,
	"GET /v1/tokens":         ferry.RoleAdmin,
	"GET /v1/tokens/{id}":    ferry.RoleAdmin,
	"DELETE /v1/tokens/{id}": ferry.RoleAdmin,
	"GET /v1/audit":          ferry.RoleAdmin,

	// The codec server of the Temporal UI (codec.go): decoding reads every
	// run's payloads; encoding makes payloads Temporal will act on (the
	// UI's signals and starts), so it is an operator's.
	"POST /codec/decode": ferry.RoleViewer,
	"POST /codec/encode": ferry.RoleOperator,
}

// kindRoles raise the role needed to start, plan (dry run) or steer runs of
// a kind above the route's: runs whose scope is a whole site or backend
// move every project's groups at once.
var kindRoles = map[string]string{
	ferry.KindEvacuate:        ferry.RoleAdmin,
	ferry.KindBackendFailover: ferry.RoleAdmin,
	ferry.KindMonitor:         ferry.RoleAdmin,
}

// RouteRoles returns a copy of the route table, for tests and docs.
func RouteRoles() map[string]string {
	out := make(map[string]string, len(routeRoles))
	for k, v := range routeRoles {
		out[k] = v
	}
	return out
}

// KindRole returns the role a run of kind needs: operator unless kindRoles
// says more.
func KindRole(kind string) string {
	if r, ok := kindRoles[kind]; ok {
		return r
	}
	return ferry.RoleOperator
}

// checkRouteTable reports the routes of r without an entry in routeRoles,
// and the entries without a route.
func checkRouteTable(r chi.Routes) error {
	seen := map[string]bool{}
	var missing []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + route
		seen[key] = true
		if _, ok := routeRoles[key]; !ok {
			missing = append(missing, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var stale []string
	for k := range routeRoles {
		if !seen[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, "routes without a role in routeRoles (server/auth.go): "+strings.Join(missing, ", "))
	}
	if len(stale) > 0 {
		msgs = append(msgs, "routeRoles entries without a route: "+strings.Join(stale, ", "))
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// openPaths are the paths of public routes: requests to them are not
// authenticated. Every other path is, before routing, so that an
// unauthenticated caller learns nothing, not even which routes exist.
// openPrefixes are the public routes ending in "/*" (the dashboard's
// assets): every path under them is public.
var openPaths, openPrefixes = func() (map[string]bool, []string) {
	out := map[string]bool{}
	var prefixes []string
	for k, role := range routeRoles {
		if role != public {
			continue
		}
		_, path, _ := strings.Cut(k, " ")
		if strings.Contains(path, "{") || strings.Contains(strings.TrimSuffix(path, "/*"), "*") {
			panic("server: a public route must have a fixed path or end in /*: " + k)
		}
		if p, ok := strings.CutSuffix(path, "*"); ok {
			prefixes = append(prefixes, p)
			continue
		}
		out[path] = true
	}
	sort.Strings(prefixes)
	return out, prefixes
}()

const principalKey ctxKey = 1

// principalFrom returns the token that authenticated the request.
func principalFrom(ctx context.Context) (ferry.Token, bool) {
	t, ok := ctx.Value(principalKey).(ferry.Token)
	return t, ok
}

// maxTokenLen bounds what the server hashes and looks up.
const maxTokenLen = 512

// unauthorizedError is a request without valid credentials: 401.
type unauthorizedError struct {
	msg string
	// invalid is set when a token was sent but is not valid (RFC 6750's
	// invalid_token), unset when none was sent.
	invalid bool
}

func (e *unauthorizedError) Error() string { return e.msg }

// forbiddenError is an authenticated request its token's role does not
// allow: 403 naming the role needed.
type forbiddenError struct {
	Need string
	Msg  string
}

func (e *forbiddenError) Error() string { return e.Msg }

// authenticate finds the token of every request to a non-public path, and
// refuses (401) a request without a valid one. Only the hash of what the
// client sent is ever looked up, logged nowhere.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isOpenPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		tok, err := s.tokenOf(r)
		if err != nil {
			var ue *unauthorizedError
			if errors.As(err, &ue) {
				challenge := `Bearer realm="ferry"`
				if ue.invalid {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
			}
			s.error(w, r, err)
			return
		}
		if a := auditFrom(r.Context()); a != nil {
			a.entry.TokenID, a.entry.TokenName, a.entry.Role, a.entry.Project = tok.ID, tok.Name, tok.Role, tok.Project
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, tok)))
	})
}

// isOpenPath reports whether path belongs to a public route.
func isOpenPath(path string) bool {
	if openPaths[path] {
		return true
	}
	for _, p := range openPrefixes {
		if strings.HasPrefix(path, p) && !strings.Contains(path, "..") {
			return true
		}
	}
	return false
}

// tokenOf returns the active token a request carries.
func (s *server) tokenOf(r *http.Request) (ferry.Token, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return ferry.Token{}, &unauthorizedError{msg: "authentication required: send an API token as 'Authorization: Bearer <token>' (the CLI reads FERRY_TOKEN)"}
	}
	scheme, secret, _ := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return ferry.Token{}, &unauthorizedError{msg: "the Authorization header must be 'Bearer <token>'", invalid: true}
	}
	if len(secret) > maxTokenLen {
		return ferry.Token{}, &unauthorizedError{msg: "the token is not valid", invalid: true}
	}
	// Kept for at most the token cache's TTL (tokencache.go).
	tok, read, err := s.tokens.byHash(r.Context(), ferry.HashToken(secret), s.Store.TokenByHash)
	switch {
	case ferry.ErrorCode(err) == ferry.ENotFound:
		return ferry.Token{}, &unauthorizedError{msg: "the token is not valid", invalid: true}
	case err != nil:
		s.Logger.ErrorContext(r.Context(), "token lookup failed",
			slog.String("request_id", requestIDFrom(r.Context())), slog.Any("error", err))
		return ferry.Token{}, &unavailableError{"cannot check the token now: the store does not answer"}
	}
	now := s.tokens.now()
	if tok.RevokedAt != nil {
		return ferry.Token{}, &unauthorizedError{msg: fmt.Sprintf("token %s was revoked at %s", tok.ID, tok.RevokedAt.Format(time.RFC3339)), invalid: true}
	}
	if tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt) {
		return ferry.Token{}, &unauthorizedError{msg: fmt.Sprintf("token %s expired at %s", tok.ID, tok.ExpiresAt.Format(time.RFC3339)), invalid: true}
	}
	if !read {
		return tok, nil // its use was recorded when it was read
	}
	if err := s.Store.TouchToken(r.Context(), tok.ID, now); err != nil {
		s.Logger.WarnContext(r.Context(), "could not record a token's use", slog.String("token_id", tok.ID), slog.Any("error", err))
	}
	return tok, nil
}

// authorize runs after routing, so it knows the route's pattern: it looks
// the route up in routeRoles and refuses (403) a token whose role is too
// low. A request it lets through that changes something is written to the
// audit log first: if the log cannot be written, nothing is done.
func (s *server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + chi.RouteContext(r.Context()).RoutePattern()
		need, ok := routeRoles[key]
		if !ok {
			s.error(w, r, fmt.Errorf("route %q has no entry in the route table", key))
			return
		}
		if need == public {
			next.ServeHTTP(w, r)
			return
		}
		if err := requireRole(r.Context(), need, "this route"); err != nil {
			s.error(w, r, err)
			return
		}
		if err := s.beginAudit(r.Context()); err != nil {
			s.error(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireRole refuses, with a message naming the role needed, a request
// whose token's role is below need. what names what needs it.
func requireRole(ctx context.Context, need, what string) error {
	p, ok := principalFrom(ctx)
	if !ok {
		return &unauthorizedError{msg: "authentication required"}
	}
	if ferry.RoleAllows(p.Role, need) {
		return nil
	}
	return &forbiddenError{Need: need, Msg: fmt.Sprintf("%s needs the %s role; token %q has the %s role", what, need, p.Name, p.Role)}
}

// requireKindRole refuses a start, dry run or steering of a run of kind
// that needs more than the token's role.
func requireKindRole(ctx context.Context, kind string) error {
	if !slices.Contains(catalogKinds, kind) && kind != ferry.KindMonitor {
		return nil // the planner names the unknown kind
	}
	return requireRole(ctx, KindRole(kind), kind+" runs")
}

// maxClaimedBy bounds the name a client gives for the person behind a
// token (steering's "by"), kept beside the token's own name.
const maxClaimedBy = 100

// actor is who did something, as a run's record keeps it: the token's name,
// which the server knows, followed by the person the client names when it
// names someone else (a shared automation token acting for alice).
func actor(ctx context.Context, claimed string) string {
	p, _ := principalFrom(ctx)
	claimed = strings.TrimSpace(claimed)
	if len(claimed) > maxClaimedBy {
		claimed = strings.ToValidUTF8(claimed[:maxClaimedBy], "")
	}
	if claimed == "" || claimed == p.Name {
		return p.Name
	}
	return p.Name + " (" + claimed + ")"
}
