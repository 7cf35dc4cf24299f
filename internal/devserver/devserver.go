// Package devserver finds and starts the Temporal dev server that Ferry's
// `make run` and tests use. The server is the Temporal CLI built from Go
// modules (never a downloaded binary), pinned to one version and kept in the
// user's cache directory, so a fresh clone finds it without rebuilding.
package devserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferrydr/ferry/workflows"
)

// Version is the pinned Temporal CLI release. Later releases carry a
// replace directive that `go install` refuses.
const Version = "v1.5.1"

// Module is what `go install` builds.
const Module = "github.com/temporalio/cli/cmd/temporal@" + Version

// BinaryPath is where the pinned CLI lives: $FERRY_TEMPORAL_BIN, or
// <user cache dir>/ferry/temporal-<version>/temporal.
func BinaryPath() string {
	if p := os.Getenv("FERRY_TEMPORAL_BIN"); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = filepath.Join(os.TempDir(), "ferry-cache")
	}
	return filepath.Join(dir, "ferry", "temporal-"+Version, "temporal")
}

// SearchAttributeArgs are the dev server flags that register Ferry's search
// attributes (workflows.SearchAttributeNames), so runs can be filtered by
// group, site, kind and state in the UI. A run upserts its state as it
// goes, and Temporal fails the workflow task of a run that upserts an
// unregistered attribute: every dev server Ferry starts passes these.
func SearchAttributeArgs() []string {
	var args []string
	for _, name := range workflows.SearchAttributeNames {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	return args
}

// Server is a running dev server.
type Server struct {
	dev      *testsuite.DevServer
	HostPort string
}

// Client returns the client connected to the server's default namespace.
func (s *Server) Client() client.Client { return s.dev.Client() }

// Stop stops the server process.
func (s *Server) Stop() error { return s.dev.Stop() }

// StartEphemeral starts a dev server on free ports with an in-memory
// database and no UI, for tests.
func StartEphemeral(ctx context.Context) (*Server, error) {
	bin := BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("temporal dev server not found at %s (build it with `make temporal`): %w", bin, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dev, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: bin,
		LogLevel:     "error",
		ExtraArgs:    SearchAttributeArgs(),
		Stdout:       os.Stderr,
		Stderr:       os.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	return &Server{dev: dev, HostPort: dev.FrontendHostPort()}, nil
}

// Start starts a dev server for one test and stops it when the test ends.
// A missing binary fails the test: in CI a missing server is a failure.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := StartEphemeral(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return s
}
