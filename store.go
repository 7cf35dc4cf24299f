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
