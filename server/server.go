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
	"go.temporal.io/sdk/converter"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/codec"
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
	// PayloadKeys, when set, is the keyring the Temporal client seals
	// payloads with: the API reads schedules' inputs with it and serves
	// the codec server the Temporal UI calls at /codec/. Nil: payloads are
	// in the clear and /codec/ answers 404.
	PayloadKeys *codec.Keyring
	Logger      *slog.Logger
}

type server struct {
	Deps
	// dataConverter reads the payloads Temporal hands back raw (a
	// schedule's action): the Temporal client's, sealed or not.
	dataConverter converter.DataConverter
	// uiOrigin is the Temporal UI's origin, which CORS lets call /codec/.
	uiOrigin string
	// codecHandler encodes and decodes with PayloadKeys (codec.go); CORS
	// is done before authentication, so it adds none.
	codecHandler http.Handler
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
	s := &server{Deps: d, dataConverter: converter.GetDefaultDataConverter(), uiOrigin: codec.Origin(d.TemporalUIURL)}
	if d.PayloadKeys != nil {
		s.dataConverter = codec.DataConverter(d.PayloadKeys)
		s.codecHandler = codec.Handler(d.PayloadKeys, "")
	}
	h := s.routes()
	if err := checkRouteTable(h); err != nil {
		panic("server: " + err.Error())
	}
	return h
}
