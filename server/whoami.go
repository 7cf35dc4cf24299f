package server

import (
	"net/http"

	"github.com/ferrydr/ferry"
)

// whoamiAnswer is what GET /v1/whoami says of the caller's token: the
// dashboard shows only the buttons the role allows.
type whoamiAnswer struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Project string `json:"project,omitempty"`
	// Roles lists every role the token's role includes, highest first.
	Roles []string `json:"roles"`
	// TemporalUIURL is where the runs' histories are read, if configured.
	TemporalUIURL string `json:"temporal_ui_url,omitempty"`
	// Namespace is the Temporal namespace the runs live in (the UI's links).
	Namespace string `json:"namespace,omitempty"`
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	var roles []string
	for _, role := range []string{ferry.RoleAdmin, ferry.RoleOperator, ferry.RoleViewer} {
		if ferry.RoleAllows(p.Role, role) {
			roles = append(roles, role)
		}
	}
	writeJSON(w, http.StatusOK, whoamiAnswer{Name: p.Name, Role: p.Role, Project: p.Project, Roles: roles, TemporalUIURL: s.TemporalUIURL, Namespace: s.Namespace})
}
