package ferry

import (
	"context"
	"time"
)

// Severities of a replication event. An RPO violation is a warning when a
// replica's lag exceeds twice its group's RPO and critical past three times
// (or when the replica is in error); resolved closes either.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
	SeverityResolved = "resolved"
)

// ReplicationEvent is something the replication monitor saw happen to one
// replica: an RPO violation starting, worsening or ending, or a broken
// relationship it repaired. Events are raised on transitions, not on every
// observation, so the list reads like an incident log.
type ReplicationEvent struct {
	// ID is deterministic (the monitor's run, tick and replica), so a
	// retried write stores an event once.
	ID         string    `json:"id"`
	Group      string    `json:"group"`
	Resource   string    `json:"resource"`
	Site       string    `json:"site"`
	Backend    string    `json:"backend"`
	Severity   string    `json:"severity"`
	LagSeconds float64   `json:"lag_seconds"`
	RPOSeconds int       `json:"rpo_seconds"`
	Message    string    `json:"message"`
	At         time.Time `json:"at"`
}

// EventStore keeps replication events.
type EventStore interface {
	// AddEvents stores events; an event whose ID is stored already is left
	// as it is, and events of a group that no longer exists are dropped.
	AddEvents(ctx context.Context, events []ReplicationEvent) error
	// ListEvents returns the newest events of group ("" for every group),
	// newest first, at most limit (a default when limit <= 0).
	ListEvents(ctx context.Context, group string, limit int) ([]ReplicationEvent, error)
}
