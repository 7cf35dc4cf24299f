package server

import "net/http"

// metrics serves Prometheus' scrape (Deps.Metrics); 404 when not set.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		s.error(w, r, errRouteNotFound)
		return
	}
	s.Metrics.ServeHTTP(w, r)
}
