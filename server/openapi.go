package server

import "net/http"

// openapi serves the OpenAPI document of the API. (Placeholder: being written.)
func (s *server) openapi(w http.ResponseWriter, r *http.Request) {
	s.error(w, r, errRouteNotFound)
}
