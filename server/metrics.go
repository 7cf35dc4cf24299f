package server

import (
	"net/http"

	"github.com/ferrydr/ferry"
)

// metrics serves Prometheus' scrape (Deps.Metrics); 404 when not set.
// The metrics name every project's groups, read from the store past the
// request's project scope, so a project's token is refused (as by the
// codec): Prometheus scrapes with a token without a project.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		s.error(w, r, errRouteNotFound)
		return
	}
	if p, _ := principalFrom(r.Context()); p.Project != "" {
		s.error(w, r, &forbiddenError{Need: ferry.RoleViewer,
			Msg: "the metrics name every project's groups: they need a token without a project; token " + p.Name + " is bound to project " + p.Project})
		return
	}
	s.Metrics.ServeHTTP(w, r)
}
