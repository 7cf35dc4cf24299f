package server

import "net/http"

// toDashboard sends a browser to the dashboard.
func (s *server) toDashboard(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/", http.StatusFound)
}

// dashboard serves the dashboard's embedded assets. (Placeholder: being written.)
func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	s.error(w, r, errRouteNotFound)
}
