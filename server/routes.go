package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes is every route of the API. Each needs an entry in routeRoles
// (auth.go): the role that may call it.
func (s *server) routes() *chi.Mux {
	mux := chi.NewRouter()
	// audit wraps recoverPanics to see the 500 a panic ends in;
	// every request but the public ones is authenticated before routing.
	// The codec's CORS comes first: a browser's preflight carries no token.
	mux.Use(s.requestID, s.logRequests, s.audit, s.recoverPanics, s.codecCORS, s.authenticate)
	mux.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, errRouteNotFound)
	})
	mux.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, errMethodNotAllowed)
	})
	// authorize runs once the route is known, around every handler.
	mux.Group(func(r chi.Router) {
		r.Use(s.routeFields, s.authorize) // routeFields: middleware.go
		s.handlers(r)
	})
	return mux
}

// handlers registers every route with its full path, in one inline group,
// so that authorize runs after routing and knows each route's pattern.
func (s *server) handlers(r chi.Router) {
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/metrics", s.metrics)         // metrics.go
	r.Get("/v1/openapi.json", s.openapi) // openapi.go
	r.Get("/v1/whoami", s.whoami)

	// The dashboard (ui.go): static pages that ask for a token and call
	// the API like any client.
	r.Get("/", s.toDashboard)
	r.Get("/ui", s.toDashboard)
	r.Get("/ui/*", s.dashboard)

	sites, backends, groups := s.sites(), s.backends(), s.groups()

	r.Get("/v1/sites", listItems(s, sites))
	r.Put("/v1/sites/{name}", putItem(s, sites))
	r.Get("/v1/sites/{name}", getItem(s, sites))
	r.Delete("/v1/sites/{name}", deleteItem(s, sites))

	r.Get("/v1/backends", listItems(s, backends))
	r.Put("/v1/backends/{name}", putItem(s, backends))
	r.Get("/v1/backends/{name}", getItem(s, backends))
	r.Delete("/v1/backends/{name}", deleteItem(s, backends))

	r.Get("/v1/groups", s.listGroups) // listItems' answer, kept by version
	r.Put("/v1/groups/{name}", putItem(s, groups))
	r.Get("/v1/groups/{name}", getItem(s, groups))
	r.Delete("/v1/groups/{name}", deleteItem(s, groups))
	r.Get("/v1/groups/{name}/replication", s.groupReplication)
	r.Put("/v1/groups/{name}/drill-schedule", s.putDrillSchedule)
	r.Delete("/v1/groups/{name}/drill-schedule", s.deleteDrillSchedule)
	r.Get("/v1/schedules", s.listSchedules)

	r.Post("/v1/runs", s.startRun)
	r.Get("/v1/runs", s.listRuns)
	r.Get("/v1/runs/{id}", s.getRun)
	r.Get("/v1/runs/{id}/report", s.runReport)
	r.Post("/v1/runs/{id}/{action:approve|pause|resume|abort|retry|skip}", s.steerRun)

	r.Post("/v1/tokens", s.createToken)
	r.Get("/v1/tokens", s.listTokens)
	r.Get("/v1/tokens/{id}", s.getToken)
	r.Delete("/v1/tokens/{id}", s.revokeToken)
	r.Get("/v1/audit", s.listAudit)

	r.Post("/codec/encode", s.codec)
	r.Post("/codec/decode", s.codec)
}
