package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/ferrydr/ferry"
)

// groupsVersioner is a store that can name the state of its groups table
// cheaply (store.Store.GroupsVersion).
type groupsVersioner interface {
	GroupsVersion(ctx context.Context) (string, error)
}

// GroupsVersion passes the store's through, when it has one.
func (s scopedStore) GroupsVersion(ctx context.Context) (string, error) {
	if v, ok := s.Store.(groupsVersioner); ok {
		return v.GroupsVersion(ctx)
	}
	return "", nil
}

// maxGroupPages bounds the encoded pages kept: a page of 100 full groups
// is about half a megabyte.
const maxGroupPages = 32

// groupPages keeps encoded answers of GET /v1/groups. A page of full
// groups costs a read of every group's spec, a decode and an encode,
// milliseconds of CPU per request under load; the groups change rarely.
// Each answer is kept with the store's groups version read before the page
// was, and served while a read of the version (one small query, no spec)
// finds it unchanged: never staler than the store.
type groupPages struct {
	flight singleflight.Group
	mu     sync.Mutex
	pages  map[groupPageKey]groupPage
}

type groupPageKey struct {
	project, token string
	limit          int
}

type groupPage struct {
	version string
	body    []byte
}

// listGroups answers GET /v1/groups: the shape and bytes of listItems',
// from the kept page when the groups have not changed.
func (s *server) listGroups(w http.ResponseWriter, r *http.Request) {
	p, err := pageFrom(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ctx := r.Context()
	project, _ := projectOf(ctx)
	key := groupPageKey{project: project, token: p.Token, limit: p.Limit}
	var version string
	if v, ok := s.Store.(groupsVersioner); ok {
		if version, err = v.GroupsVersion(ctx); err != nil {
			s.error(w, r, err)
			return
		}
	}
	if version != "" {
		s.groupPages.mu.Lock()
		page, ok := s.groupPages.pages[key]
		s.groupPages.mu.Unlock()
		if ok && page.version == version {
			writeRaw(w, page.body)
			return
		}
	}
	// Requests that miss together build the page once (they share the
	// project, so the scope; one going away does not fail the others).
	v, err, _ := s.groupPages.flight.Do(fmt.Sprintf("%q %q %d %q", key.project, key.token, key.limit, version), func() (any, error) {
		return s.encodeGroups(context.WithoutCancel(ctx), p)
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	body := v.([]byte)
	if version != "" {
		s.groupPages.mu.Lock()
		if s.groupPages.pages == nil || len(s.groupPages.pages) >= maxGroupPages {
			s.groupPages.pages = map[groupPageKey]groupPage{}
		}
		s.groupPages.pages[key] = groupPage{version: version, body: body}
		s.groupPages.mu.Unlock()
	}
	writeRaw(w, body)
}

// encodeGroups reads a page of groups and encodes it as listItems would.
func (s *server) encodeGroups(ctx context.Context, p ferry.Page) ([]byte, error) {
	items, next, err := s.Store.ListGroups(ctx, p)
	if err != nil {
		return nil, err
	}
	if items == nil {
		items = []ferry.Group{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as writeJSON
	if err := enc.Encode(list[ferry.Group]{Items: items, NextPageToken: next}); err != nil {
		return nil, fmt.Errorf("encode groups: %w", err)
	}
	return buf.Bytes(), nil
}

// writeRaw answers 200 with an encoded JSON body.
func writeRaw(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
