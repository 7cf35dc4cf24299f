// Package server is Ferry's HTTP API: the inventory (sites, backends,
// protection groups) from the store, and runs started, queried and steered
// through Temporal. It never calls a driver.
package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
)

// Store is what the API needs from persistence.
type Store interface {
	ferry.InventoryStore
	ferry.RunStore
	ferry.AuthStore
	Ping(context.Context) error
}

// Deps are the server's dependencies.
type Deps struct {
	Store    Store
	Temporal client.Client
	// Namespace and TaskQueue are where runs start.
	Namespace string
	TaskQueue string
	// TemporalUIURL is the base URL of the Temporal Web UI (e.g.
	// http://127.0.0.1:8233); run answers link to the run's history there.
	TemporalUIURL string
	Logger        *slog.Logger
}

type server struct {
	Deps
}

// New returns the API's handler.
func New(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.Namespace == "" {
		d.Namespace = "default"
	}
	// Handlers see groups and runs through the request's project scope.
	d.Store = scopedStore{d.Store}
	s := &server{Deps: d}
	h := s.routes()
	if err := checkRouteTable(h); err != nil {
		panic("server: " + err.Error())
	}
	return h
}
