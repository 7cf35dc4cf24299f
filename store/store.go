// Package store keeps Ferry's inventory (sites, backends, protection groups,
// replicas) and run records in PostgreSQL. It owns all of Ferry's SQL: the
// schema is a set of goose migrations embedded in the binary and applied by
// Open.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MaintenanceDatabase is the database Open connects to when it has to create
// the database its URL names.
const MaintenanceDatabase = "postgres"

// Store implements ferry.InventoryStore and ferry.RunStore over a pgx pool.
type Store struct {
	pool *pgxpool.Pool
}

var (
	_ ferry.InventoryStore = (*Store)(nil)
	_ ferry.RunStore       = (*Store)(nil)
)

// Open connects to the database named in databaseURL (a postgres:// URL or a
// key=value DSN), creates it first if it does not exist, applies the embedded
// migrations and returns a Store over a connection pool.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse database url: %w", err)
	}
	if err := ensureDatabase(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to database %q: %w", cfg.ConnConfig.Database, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// ensureDatabase creates the database cc names when connecting to it fails
// because it does not exist. Another process creating it at the same time is
// fine.
func ensureDatabase(ctx context.Context, cc *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err == nil {
		return conn.Close(ctx)
	}
	if !hasCode(err, "3D000") { // invalid_catalog_name: the database does not exist
		return fmt.Errorf("store: connect to database %q: %w", cc.Database, err)
	}
	mc := cc.Copy()
	mc.Database = MaintenanceDatabase
	mconn, err := pgx.ConnectConfig(ctx, mc)
	if err != nil {
		return fmt.Errorf("store: database %q does not exist; connect to %q to create it: %w", cc.Database, MaintenanceDatabase, err)
	}
	defer mconn.Close(ctx) //nolint:errcheck
	_, err = mconn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cc.Database}.Sanitize())
	// 42P04 duplicate_database, or 23505 when a concurrent creator won the
	// race on pg_database's unique index.
	if err != nil && !hasCode(err, "42P04") && !hasCode(err, "23505") {
		return fmt.Errorf("store: create database %q: %w", cc.Database, err)
	}
	return nil
}

// migrate applies the embedded migrations, holding a PostgreSQL advisory lock
// so that processes starting together apply them once.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close() //nolint:errcheck
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: apply migrations: %w", err)
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Pool returns the underlying pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

func hasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// withField prefixes the Field of err's *ferry.Error (e.g. "backends[1]" +
// "site"), so that an error in a list item names the item.
func withField(err error, prefix string) error {
	var fe *ferry.Error
	if !errors.As(err, &fe) {
		return err
	}
	out := *fe
	if out.Field == "" {
		out.Field = prefix
	} else {
		out.Field = prefix + "." + out.Field
	}
	return &out
}

// mapPutErr turns a foreign-key or check violation that slipped past the
// explicit checks (a concurrent delete) into an EInvalid error.
func mapPutErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23503": // foreign_key_violation
			return ferry.Errorf(ferry.EInvalid, "references an item that does not exist (%s)", pe.ConstraintName)
		case "23505": // unique_violation
			return ferry.Errorf(ferry.EConflict, "changed concurrently, retry (%s)", pe.ConstraintName)
		}
	}
	return err
}

// mapDeleteErr turns a foreign-key violation that slipped past the explicit
// checks (a concurrent put) into an EConflict error.
func mapDeleteErr(err error) error {
	if hasCode(err, "23503") {
		return ferry.Errorf(ferry.EConflict, "still in use")
	}
	return err
}
