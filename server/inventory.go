package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
)

// list is the shape of every collection answer.
type list[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

// collection is one declarative kind of the inventory: how its items are
// named, prepared for a PUT and kept.
type collection[T any] struct {
	name func(*T) *string
	// prepare drops observed fields, fills defaults and validates.
	prepare func(*T) error
	put     func(context.Context, T) (bool, error)
	get     func(context.Context, string) (T, error)
	list    func(context.Context, ferry.Page) ([]T, string, error)
	del     func(context.Context, string) error
}

func (s *server) sites() collection[ferry.Site] {
	return collection[ferry.Site]{
		name:    func(x *ferry.Site) *string { return &x.Name },
		prepare: func(x *ferry.Site) error { return x.Validate() },
		put:     s.Store.PutSite, get: s.Store.GetSite, list: s.Store.ListSites, del: s.Store.DeleteSite,
	}
}

func (s *server) backends() collection[ferry.Backend] {
	return collection[ferry.Backend]{
		name: func(x *ferry.Backend) *string { return &x.Name },
		prepare: func(x *ferry.Backend) error {
			// Observed state is written by runs, never by PUT.
			x.ReplicationStatus, x.ActiveBackendID, x.Frozen = "", "", false
			return x.Validate()
		},
		put: s.Store.PutBackend, get: s.Store.GetBackend, list: s.Store.ListBackends, del: s.Store.DeleteBackend,
	}
}

func (s *server) groups() collection[ferry.Group] {
	return collection[ferry.Group]{
		name: func(x *ferry.Group) *string { return &x.Name },
		prepare: func(x *ferry.Group) error {
			x.ActiveSite = "" // observed: where runs moved the group
			x.Defaults()
			return x.Validate()
		},
		put: s.putGroupWithSchedule, get: s.Store.GetGroup, list: s.Store.ListGroups, del: s.deleteGroupWithSchedule,
	}
}

// putItem creates or replaces an item: 201 when created, 200 when replaced,
// with the stored item.
func putItem[T any](s *server, c collection[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var item T
		if err := decode(w, r, &item, false); err != nil {
			s.error(w, r, err)
			return
		}
		path := chi.URLParam(r, "name")
		switch name := c.name(&item); {
		case *name == "":
			*name = path
		case *name != path:
			s.error(w, r, ferry.Invalid("name", "%q does not match the name in the path, %q", *name, path))
			return
		}
		if err := c.prepare(&item); err != nil {
			s.error(w, r, err)
			return
		}
		created, err := c.put(r.Context(), item)
		if err != nil {
			s.error(w, r, err)
			return
		}
		stored, err := c.get(r.Context(), path)
		if err != nil {
			s.error(w, r, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, stored)
	}
}

func getItem[T any](s *server, c collection[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		item, err := c.get(r.Context(), chi.URLParam(r, "name"))
		if err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, item)
	}
}

func listItems[T any](s *server, c collection[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := pageFrom(r)
		if err != nil {
			s.error(w, r, err)
			return
		}
		items, next, err := c.list(r.Context(), p)
		if err != nil {
			s.error(w, r, err)
			return
		}
		if items == nil {
			items = []T{}
		}
		writeJSON(w, http.StatusOK, list[T]{Items: items, NextPageToken: next})
	}
}

func deleteItem[T any](s *server, c collection[T]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.del(r.Context(), chi.URLParam(r, "name")); err != nil {
			s.error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// readyTimeout bounds each readiness probe.
const readyTimeout = 3 * time.Second

// maxLimit is the largest page a client may ask for.
const maxLimit = 1000

// pageFrom reads ?limit= and ?page_token=.
func pageFrom(r *http.Request) (ferry.Page, error) {
	q := r.URL.Query()
	p := ferry.Page{Token: q.Get("page_token")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, ferry.Invalid("limit", "must be an integer from 1 to %d, not %q", maxLimit, v)
		}
		p.Limit = n
	}
	return p, nil
}

// replicaStatus is a replica with its compliance to the group's RPO.
type replicaStatus struct {
	ferry.Replica
	RPOCompliant bool `json:"rpo_compliant"`
}

// groupReplication answers the last observed state of every replica of a
// group. A replica complies with the RPO when it is healthy and its lag is
// within the group's objective.
func (s *server) groupReplication(w http.ResponseWriter, r *http.Request) {
	g, err := s.Store.GetGroup(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	rs, err := s.Store.ListReplicas(r.Context(), g.Name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	items := make([]replicaStatus, 0, len(rs))
	for _, rep := range rs {
		ok := rep.State != ferry.ReplicaError && rep.LagSecs <= float64(g.RPOSeconds)
		items = append(items, replicaStatus{Replica: rep, RPOCompliant: ok})
	}
	// The replication monitor's recent events, newest first.
	events := []ferry.ReplicationEvent{}
	if es, ok := s.Store.(ferry.EventStore); ok {
		if events, err = es.ListEvents(r.Context(), g.Name, 0); err != nil {
			s.error(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Group      string                   `json:"group"`
		RPOSeconds int                      `json:"rpo_seconds"`
		Items      []replicaStatus          `json:"items"`
		Events     []ferry.ReplicationEvent `json:"events"`
	}{g.Name, g.RPOSeconds, items, events})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when PostgreSQL and Temporal both answer, else a 503
// problem naming what does not.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var failed []string
	if err := s.Store.Ping(ctx); err != nil {
		s.Logger.WarnContext(ctx, "readiness: postgresql", "error", err)
		failed = append(failed, "postgresql does not answer")
	}
	if s.Temporal == nil {
		failed = append(failed, "no temporal client is configured")
	} else if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		s.Logger.WarnContext(ctx, "readiness: temporal", "error", err)
		failed = append(failed, "temporal does not answer")
	}
	if len(failed) > 0 {
		s.error(w, r, &unavailableError{"not ready: " + strings.Join(failed, "; ")})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
