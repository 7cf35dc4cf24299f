// Package workflows holds Ferry's runs as deterministic Temporal workflows.
// Only workflow APIs are used here; side effects live in activities/.
package workflows

import (
	"go.temporal.io/sdk/temporal"
)

// Names of durable things. Changing one breaks running histories.
const (
	TaskQueue = "ferry"

	FailoverWorkflowName = "failover"

	// QueryProgress returns the run's ferry.Run with every step's state.
	QueryProgress = "progress"

	// Updates that steer a run; each takes a SteerRequest.
	UpdateApprove = "approve"
	UpdatePause   = "pause"
	UpdateResume  = "resume"
	UpdateAbort   = "abort"
	UpdateRetry   = "retry"
	UpdateSkip    = "skip"
)

// Search attributes, registered on the Temporal server at start so runs can
// be filtered by group, site, kind and state in the Temporal UI
// (docs/temporal-ui.md). The starter sets group, site and kind; the run
// itself keeps its state current (search.go).
var (
	SearchGroup = temporal.NewSearchAttributeKeyKeyword("FerryGroup")
	SearchSite  = temporal.NewSearchAttributeKeyKeyword("FerrySite")
	SearchKind  = temporal.NewSearchAttributeKeyKeyword("FerryRunKind")
	SearchState = temporal.NewSearchAttributeKeyKeyword("FerryRunState")
)

// SearchAttributeNames are the names to register on a Temporal server, all
// of type Keyword.
var SearchAttributeNames = []string{"FerryGroup", "FerrySite", "FerryRunKind", "FerryRunState"}

// GroupWorkflowID is the workflow id of every mutating run of a group. The id
// is the mutex: Temporal refuses a second running workflow with the same id,
// so one group never has two mutating runs at once (invariant 4).
func GroupWorkflowID(group string) string { return "ferry-group-" + group }

// FailoverInput starts a failover run.
type FailoverInput struct {
	Group string `json:"group"`
	Mode  string `json:"mode"` // ferry.ModePlanned or ferry.ModeUnplanned
	// TargetSite defaults to the group's DR site.
	TargetSite  string `json:"target_site,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// QuiescePolicy overrides the group's policy for this run.
	QuiescePolicy string `json:"quiesce_policy,omitempty"`
	// SkipApproval lets an admin start a run that the group's policy would
	// hold for approval (e.g. the approver is the one launching it).
	SkipApproval bool `json:"skip_approval,omitempty"`
	// MaxAttempts bounds how often a step's activity retries by itself
	// before the run compensates or pauses (default 5).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// FenceEpoch, when set, is the epoch an unplanned failover fences under
	// (an evacuation gives all its groups one, so failovers of groups that
	// share a backend do not race each other's epochs). The fence is then
	// the caller's: a rollback leaves it in place.
	FenceEpoch int64 `json:"fence_epoch,omitempty"`
	// FencedOutOfBand, in an unplanned failover, is the operator's
	// statement that the old primary is already cut off from writes by
	// means outside Ferry (its array powered off, its storage network
	// cut): storage that has no fence (Cinder, Manila) cannot do it. The
	// fence step then records the statement and who made it instead of
	// calling the storage; nothing else changes.
	FencedOutOfBand string `json:"fenced_out_of_band,omitempty"`
}

// SteerRequest is the argument of every steering update.
type SteerRequest struct {
	By      string `json:"by,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Registration is one workflow of the catalog and the stable name it is
// registered under: renaming a Go function must not break running
// histories.
type Registration struct {
	Name string
	Func any
}

var registry []Registration

// register adds a workflow to the catalog; each run kind's file calls it
// from init, so adding a kind touches no shared list.
func register(name string, fn any) { registry = append(registry, Registration{Name: name, Func: fn}) }

// All lists every workflow of the catalog, for workers and replayers.
func All() []Registration { return append([]Registration(nil), registry...) }
