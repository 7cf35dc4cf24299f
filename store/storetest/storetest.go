// Package storetest gives each test its own PostgreSQL database: a fresh,
// uniquely named database on the server FERRY_TEST_DATABASE_URL points at
// (default postgres://postgres@127.0.0.1:5432/postgres), dropped when the
// test ends. A test that needs PostgreSQL fails when it is not there.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/ferrydr/ferry/store"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the test server's URL.
const EnvURL = "FERRY_TEST_DATABASE_URL"

// DefaultURL is the server used when EnvURL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

// ServerURL returns the URL of the test server's maintenance database.
func ServerURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// New creates a fresh database, opens a Store on it (migrations applied) and
// registers a cleanup that closes the store and drops the database.
func New(tb testing.TB) *store.Store {
	tb.Helper()
	u := URL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, u)
	if err != nil {
		tb.Fatalf("storetest: open store: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// URL creates a fresh, empty database (no migrations: store.Open or the
// ferry process applies them) and returns its URL; a cleanup drops it.
func URL(tb testing.TB) string {
	tb.Helper()
	u := UnusedURL(tb)
	name := dbName(tb, u)
	withServer(tb, func(ctx context.Context, conn *pgx.Conn) {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			tb.Fatalf("storetest: create database %q: %v", name, err)
		}
	})
	return u
}

// UnusedURL returns the URL of a uniquely named database that does not exist
// yet (to test that it is created on demand); a cleanup drops it if it was
// created.
func UnusedURL(tb testing.TB) string {
	tb.Helper()
	base, err := url.Parse(ServerURL())
	if err != nil || base.Scheme == "" {
		tb.Fatalf("storetest: %s must be a postgres:// URL: %q", EnvURL, ServerURL())
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	name := "ferry_test_" + hex.EncodeToString(b[:])
	u := *base
	u.Path = "/" + name
	u.RawPath = ""
	tb.Cleanup(func() {
		withServer(tb, func(ctx context.Context, conn *pgx.Conn) {
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				tb.Errorf("storetest: drop database %q: %v", name, err)
			}
		})
	})
	return u.String()
}

func dbName(tb testing.TB, u string) string {
	tb.Helper()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		tb.Fatalf("storetest: parse %q: %v", u, err)
	}
	return cfg.Database
}

// withServer runs fn on a connection to the test server's maintenance
// database.
func withServer(tb testing.TB, fn func(ctx context.Context, conn *pgx.Conn)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		tb.Fatalf("storetest: PostgreSQL is required (set %s): connect: %v", EnvURL, err)
	}
	defer conn.Close(ctx) //nolint:errcheck
	fn(ctx, conn)
}
