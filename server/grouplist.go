package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"

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
	mu    sync.Mutex
	pages map[groupPageKey]groupPage
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
	items, next, err := s.Store.ListGroups(ctx, p)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if items == nil {
		items = []ferry.Group{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as writeJSON
	if err := enc.Encode(list[ferry.Group]{Items: items, NextPageToken: next}); err != nil {
		s.error(w, r, err)
		return
	}
	if version != "" {
		s.groupPages.mu.Lock()
		if s.groupPages.pages == nil || len(s.groupPages.pages) >= maxGroupPages {
			s.groupPages.pages = map[groupPageKey]groupPage{}
		}
		s.groupPages.pages[key] = groupPage{version: version, body: buf.Bytes()}
		s.groupPages.mu.Unlock()
	}
	writeRaw(w, buf.Bytes())
}

// writeRaw answers 200 with an encoded JSON body.
func writeRaw(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
