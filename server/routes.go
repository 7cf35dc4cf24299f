package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes is every route of the API.
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestID, s.logRequests, s.recoverPanics)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, errRouteNotFound)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, errMethodNotAllowed)
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)

	r.Route("/v1", func(r chi.Router) {
		sites, backends, groups := s.sites(), s.backends(), s.groups()

		r.Get("/sites", listItems(s, sites))
		r.Put("/sites/{name}", putItem(s, sites))
		r.Get("/sites/{name}", getItem(s, sites))
		r.Delete("/sites/{name}", deleteItem(s, sites))

		r.Get("/backends", listItems(s, backends))
		r.Put("/backends/{name}", putItem(s, backends))
		r.Get("/backends/{name}", getItem(s, backends))
		r.Delete("/backends/{name}", deleteItem(s, backends))

		r.Get("/groups", listItems(s, groups))
		r.Put("/groups/{name}", putItem(s, groups))
		r.Get("/groups/{name}", getItem(s, groups))
		r.Delete("/groups/{name}", deleteItem(s, groups))
		r.Get("/groups/{name}/replication", s.groupReplication)
		r.Put("/groups/{name}/drill-schedule", s.putDrillSchedule)
		r.Delete("/groups/{name}/drill-schedule", s.deleteDrillSchedule)
		r.Get("/schedules", s.listSchedules)

		r.Post("/runs", s.startRun)
		r.Get("/runs", s.listRuns)
		r.Get("/runs/{id}", s.getRun)
		r.Get("/runs/{id}/report", s.runReport)
		r.Post("/runs/{id}/{action:approve|pause|resume|abort|retry|skip}", s.steerRun)
	})
	return r
}
