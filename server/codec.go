package server

import (
	"net/http"
	"strings"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/codec"
)

// codecPrefix is where the API serves the codec server of the Temporal UI
// (POST /codec/encode, /codec/decode), the endpoint to configure in the UI
// and in `temporal workflow show --codec-endpoint`.
const codecPrefix = "/codec/"

// codecCORS lets the Temporal UI's browser call /codec/: its answers carry
// the CORS headers for the UI's origin (401s too, so the UI can say why),
// and its preflight, which carries no token, is answered here, before
// authentication. Other paths are untouched: the rest of the API is not for
// browsers.
func (s *server) codecCORS(next http.Handler) http.Handler {
	cors := codec.CORS(s.uiOrigin, next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, codecPrefix) {
			cors.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// codec is the codec server: it seals (encode) or opens (decode) payloads
// with the keyring the Temporal client uses. The route table has already
// checked the role; a project's token is refused besides, since a payload
// does not say which project's run it belongs to.
func (s *server) codec(w http.ResponseWriter, r *http.Request) {
	if s.PayloadKeys == nil {
		s.error(w, r, ferry.Errorf(ferry.ENotFound,
			"payloads are not encrypted here (the server has no FERRY_PAYLOAD_KEYS_FILE): there is nothing to encode or decode"))
		return
	}
	if p, _ := principalFrom(r.Context()); p.Project != "" {
		s.error(w, r, &forbiddenError{Need: ferry.RoleViewer,
			Msg: "the codec opens the payloads of every project's runs: it needs a token without a project; token " + p.Name + " is bound to project " + p.Project})
		return
	}
	s.codecHandler.ServeHTTP(w, r)
}
