package server

import (
	"context"
	"fmt"

	"github.com/ferrydr/ferry"
)

// scopedStore is the store as the API sees it for one request: a
// project-scoped token sees its project's groups and their runs only. Every
// handler reads groups and runs through it, so no route can forget the
// scope. What a token cannot see answers exactly as what does not exist:
// scope never tells another project's group or run exists.
type scopedStore struct {
	Store
}

// projectOf returns the project a request is scoped to, if any.
func projectOf(ctx context.Context) (string, bool) {
	p, ok := principalFrom(ctx)
	return p.Project, ok && p.Project != ""
}

func (s scopedStore) GetGroup(ctx context.Context, name string) (ferry.Group, error) {
	g, err := s.Store.GetGroup(ctx, name)
	if project, scoped := projectOf(ctx); err == nil && scoped && g.Project != project {
		// The store's own words for a group that does not exist.
		return ferry.Group{}, fmt.Errorf("store: get group: %w", ferry.Errorf(ferry.ENotFound, "group %q not found", name))
	}
	return g, err
}

func (s scopedStore) ListGroups(ctx context.Context, p ferry.Page) ([]ferry.Group, string, error) {
	if project, scoped := projectOf(ctx); scoped {
		return s.Store.ListProjectGroups(ctx, project, p)
	}
	return s.Store.ListGroups(ctx, p)
}

func (s scopedStore) GetRun(ctx context.Context, id string) (ferry.Run, error) {
	r, err := s.Store.GetRun(ctx, id)
	if project, scoped := projectOf(ctx); err == nil && scoped && r.Project != project {
		return ferry.Run{}, fmt.Errorf("store: get run: %w", ferry.Errorf(ferry.ENotFound, "run %q not found", id))
	}
	if err == nil {
		logRunOf(ctx, r) // middleware.go
	}
	return r, err
}

func (s scopedStore) ListRuns(ctx context.Context, f ferry.RunFilter) ([]ferry.Run, string, error) {
	if project, scoped := projectOf(ctx); scoped {
		f.Project = project
	}
	return s.Store.ListRuns(ctx, f)
}

// ListEvents passes the replication monitor's events through, when the
// store keeps them (groupReplication reads them after GetGroup checked the
// scope).
func (s scopedStore) ListEvents(ctx context.Context, group string, limit int) ([]ferry.ReplicationEvent, error) {
	if es, ok := s.Store.(ferry.EventStore); ok {
		return es.ListEvents(ctx, group, limit)
	}
	return nil, nil
}

// AddEvents completes ferry.EventStore; the API never adds events.
func (s scopedStore) AddEvents(ctx context.Context, events []ferry.ReplicationEvent) error {
	if es, ok := s.Store.(ferry.EventStore); ok {
		return es.AddEvents(ctx, events)
	}
	return fmt.Errorf("store: this store keeps no replication events")
}
