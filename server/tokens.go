package server

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ferrydr/ferry"
)

// createTokenRequest is the body of POST /v1/tokens.
type createTokenRequest struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Project string `json:"project"`
	// ExpiresInSeconds sets an expiry; 0 means the token does not expire.
	ExpiresInSeconds int64 `json:"expires_in_seconds"`
}

// createdToken answers a created token: its record and, this once, its
// secret.
type createdToken struct {
	ferry.Token
	Secret string `json:"token"`
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	var req createTokenRequest
	if err := decode(w, r, &req, false); err != nil {
		s.error(w, r, err)
		return
	}
	now := time.Now()
	t := ferry.Token{Name: req.Name, Role: req.Role, Project: req.Project, CreatedAt: now}
	if p, ok := principalFrom(r.Context()); ok {
		t.CreatedBy = p.Name
	}
	switch {
	case req.ExpiresInSeconds < 0:
		s.error(w, r, ferry.Invalid("expires_in_seconds", "must be positive (or 0 for no expiry), not %d", req.ExpiresInSeconds))
		return
	case req.ExpiresInSeconds > int64(ferry.MaxTokenTTL/time.Second):
		s.error(w, r, ferry.Invalid("expires_in_seconds", "must be at most %d (%s)", int64(ferry.MaxTokenTTL/time.Second), ferry.MaxTokenTTL))
		return
	case req.ExpiresInSeconds > 0:
		e := now.Add(time.Duration(req.ExpiresInSeconds) * time.Second)
		t.ExpiresAt = &e
	}
	if err := t.Validate(); err != nil {
		s.error(w, r, err)
		return
	}
	t, secret, hash, err := ferry.NewToken(t, now)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.Store.CreateToken(r.Context(), t, hash); err != nil {
		s.error(w, r, err)
		return
	}
	// The only answer that ever holds a secret: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdToken{Token: t, Secret: secret})
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) {
	p, err := pageFrom(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ts, next, err := s.Store.ListTokens(r.Context(), p)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if ts == nil {
		ts = []ferry.Token{}
	}
	writeJSON(w, http.StatusOK, list[ferry.Token]{Items: ts, NextPageToken: next})
}

func (s *server) getToken(w http.ResponseWriter, r *http.Request) {
	t, err := s.Store.GetToken(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// revokeToken revokes a token at once: its next request is refused. The
// record stays, for the audit log's sake.
func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) {
	t, err := s.Store.RevokeToken(r.Context(), chi.URLParam(r, "id"), time.Now())
	// Refused at once here, elsewhere within the token TTL.
	s.tokens.forget(chi.URLParam(r, "id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
