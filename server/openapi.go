package server

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 document of the API, written by hand
// beside the handlers it describes. openapi_test.go keeps it honest: every
// route is in it and every path in it is a route, each operation names the
// role routeRoles gives it, and a scenario's real answers (errors included)
// validate against its schemas.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the API's OpenAPI document (tests and tools).
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// openapi serves the document; it is public, like the probes: it describes
// what a token can do, and holds no data.
func (s *server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDocument)
}
