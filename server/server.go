// Package server is Ferry's HTTP API: the inventory (sites, backends,
// protection groups) from the store, and runs started, queried and steered
// through Temporal. It never calls a driver.
package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

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
	// ProgressTTL is how long a live run's progress is reused (zero:
	// DefaultProgressTTL; negative: never, every read asks Temporal).
	ProgressTTL time.Duration
	// TokenTTL is how long a checked token is trusted without reading the
	// store again, and so how long a revocation made elsewhere may take to
	// apply (zero: DefaultTokenTTL; negative: never, every request reads
	// the store). Now, when set, is the clock of both caches (tests).
	TokenTTL time.Duration
	Now      func() time.Time
	// Metrics, when set, serves GET /metrics (Prometheus' exposition).
	Metrics http.Handler
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
	// progress coalesces and briefly keeps live runs' progress (progress.go).
	progress *progressCache
	// tokens briefly keeps checked tokens (tokencache.go).
	tokens *tokenCache
	// groupPages keeps encoded group lists by version (grouplist.go).
	groupPages groupPages
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
	s.progress = newProgressCache(ttlOr(d.ProgressTTL, DefaultProgressTTL))
	s.tokens = newTokenCache(ttlOr(d.TokenTTL, DefaultTokenTTL))
	if d.Now != nil {
		s.progress.now, s.tokens.now = d.Now, d.Now
	}
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

// ttlOr reads a cache lifetime of Deps: zero is the default, negative off.
func ttlOr(ttl, def time.Duration) time.Duration {
	switch {
	case ttl == 0:
		return def
	case ttl < 0:
		return 0
	}
	return ttl
}
