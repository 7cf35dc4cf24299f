package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ferrydr/ferry/config"
)

// serveAPI serves the API on FERRY_HTTP_ADDR, over TLS when FERRY_TLS_CERT
// and FERRY_TLS_KEY are set.
func serveAPI(ctx context.Context, cfg config.Config, h http.Handler, logger *slog.Logger) error {
	tc, err := cfg.APITLS()
	if err != nil {
		return fmt.Errorf("API: %w", err)
	}
	return serve(ctx, cfg.HTTPAddr, h, logger, "API", tc)
}

// apiScheme is how clients reach the API: https when it serves TLS.
func apiScheme(cfg config.Config) string {
	if cfg.TLSCert != "" {
		return "https"
	}
	return "http"
}

// serve serves h on addr (over TLS when tc is not nil) until ctx ends, then
// shuts down gracefully.
func serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger, what string, tc *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tc}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		errc <- srv.Serve(ln)
	}()
	logger.Info(what+" listening", "addr", scheme+"://"+ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("%s: %w", what, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
