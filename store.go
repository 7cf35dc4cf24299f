package ferry

import (
	"context"
	"time"
)

// Replica is the last observed state of one replica of a group's resource,
// kept in the inventory so the API can answer without asking the storage.
type Replica struct {
	Group    string    `json:"group"`
	Resource string    `json:"resource"`
	Kind     string    `json:"kind"` // volume or share
	Site     string    `json:"site"`
	Backend  string    `json:"backend"`
	State    string    `json:"replica_state"`
	Seq      int64     `json:"seq"`
	LagSecs  float64   `json:"lag_seconds"`
	Observed time.Time `json:"observed"`
}

// Page asks for one page of a collection: at most Limit items after the
// opaque Token a previous page returned.
type Page struct {
	Limit int
	Token string
}

// RunFilter selects runs; empty fields match all.
type RunFilter struct {
	Group string
	Site  string
	Kind  string
	State string
	// Project keeps the runs of that project's groups only (a
	// project-scoped token's view).
	Project string
	Page
}

// InventoryStore keeps sites, backends, groups and replicas. Put creates or
// replaces and reports whether it created. Errors are *Error with ENotFound,
// EConflict (e.g. deleting a site a backend uses, or a group a running run
// uses) or EInvalid.
type InventoryStore interface {
	PutSite(ctx context.Context, s Site) (created bool, err error)
	GetSite(ctx context.Context, name string) (Site, error)
	ListSites(ctx context.Context, p Page) ([]Site, string, error)
	DeleteSite(ctx context.Context, name string) error

	PutBackend(ctx context.Context, b Backend) (created bool, err error)
	GetBackend(ctx context.Context, name string) (Backend, error)
	ListBackends(ctx context.Context, p Page) ([]Backend, string, error)
	DeleteBackend(ctx context.Context, name string) error
	// SetBackendState records observed replication state written by runs.
	SetBackendState(ctx context.Context, name, replicationStatus, activeBackendID string, frozen bool) error

	PutGroup(ctx context.Context, g Group) (created bool, err error)
	GetGroup(ctx context.Context, name string) (Group, error)
	ListGroups(ctx context.Context, p Page) ([]Group, string, error)
	// ListProjectGroups is ListGroups of one project's groups only.
	ListProjectGroups(ctx context.Context, project string, p Page) ([]Group, string, error)
	DeleteGroup(ctx context.Context, name string) error
	// SetGroupActiveSite records where a group runs after a run moved it.
	SetGroupActiveSite(ctx context.Context, name, site string) error

	PutReplicas(ctx context.Context, group string, rs []Replica) error
	// ReplaceReplicas records rs as the group's whole observed set: records
	// of replicas not in it are removed.
	ReplaceReplicas(ctx context.Context, group string, rs []Replica) error
	ListReplicas(ctx context.Context, group string) ([]Replica, error)

	// ApplyInventory puts every item of inv in one transaction: all or
	// nothing.
	ApplyInventory(ctx context.Context, inv Inventory) error
}

// RunStore keeps run records.
type RunStore interface {
	// CreateRun inserts a run record unless one with its id exists.
	CreateRun(ctx context.Context, r Run) error
	// FinishRun writes the complete record of a run (insert or replace).
	FinishRun(ctx context.Context, r Run) error
	GetRun(ctx context.Context, id string) (Run, error)
	ListRuns(ctx context.Context, f RunFilter) ([]Run, string, error)
	// ActiveRuns lists runs of a group whose recorded state is not final.
	ActiveRuns(ctx context.Context, group string) ([]Run, error)
}

// AuditFilter selects audit entries; empty fields match all.
type AuditFilter struct {
	// Since keeps entries at or after it.
	Since time.Time
	// Token keeps the entries of one token, by id or name.
	Token string
	Page
}

// AuthStore keeps API tokens (as hashes only: the secret never reaches the
// store) and the audit log. Errors are *Error with ENotFound, EConflict or
// EInvalid.
type AuthStore interface {
	// CreateToken stores a new token under the SHA-256 hash of its secret.
	// EConflict when an unrevoked token has the same name.
	CreateToken(ctx context.Context, t Token, hash []byte) error
	// BootstrapToken creates an admin token unless an active admin token
	// exists (EConflict naming it); force creates it anyway. Concurrent
	// bootstraps create one.
	BootstrapToken(ctx context.Context, t Token, hash []byte, force bool) error
	// TokenByHash returns the token whose secret hashes to hash, revoked
	// or expired ones included: the caller decides. ENotFound otherwise.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	GetToken(ctx context.Context, id string) (Token, error)
	// ListTokens lists tokens, newest first.
	ListTokens(ctx context.Context, p Page) ([]Token, string, error)
	// RevokeToken marks a token revoked at the given time; revoking it
	// again keeps the first time.
	RevokeToken(ctx context.Context, id string, at time.Time) (Token, error)
	// TouchToken records a use of the token (at most once a minute is
	// written, so polling clients do not write on every read).
	TouchToken(ctx context.Context, id string, at time.Time) error

	// AppendAudit appends an entry and returns its id.
	AppendAudit(ctx context.Context, e AuditEntry) (int64, error)
	// CompleteAudit records the outcome of an entry appended before its
	// request was handled.
	CompleteAudit(ctx context.Context, id int64, status int, runID string) error
	// ListAudit lists entries, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, string, error)
}
