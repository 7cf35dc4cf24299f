// Package ferry holds Ferry's domain: the inventory (sites, backends, protection
// groups), the vocabulary of replication (kept as in Cinder and Manila), runs and
// their steps, and the error codes every layer shares. It imports no adapter,
// no store and no Temporal code, so every other package can depend on it.
package ferry

import (
	"time"
)

// Backend replication_status values, as in Cinder.
const (
	ReplicationEnabled     = "enabled"
	ReplicationDisabled    = "disabled"
	ReplicationFailingOver = "failing-over"
	ReplicationFailedOver  = "failed-over"
	ReplicationFailoverErr = "failover-error"
	ReplicationError       = "error"
	ReplicationNotCapable  = "not-capable"

	// ActiveBackendDefault is Cinder's word for "fail back to the primary".
	ActiveBackendDefault = "default"
)

// Replica replica_state values, as in Manila. in_sync means "within the RPO",
// not "synchronous".
const (
	ReplicaActive    = "active"
	ReplicaInSync    = "in_sync"
	ReplicaOutOfSync = "out_of_sync"
	ReplicaError     = "error"
)

// Site is a failure domain: an availability zone or a whole cloud deployment.
type Site struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// ReplicationTarget names where a backend replicates to: the target id used by
// Cinder's failover_host (replication_device backend_id) and the backend that
// serves it at the other site.
type ReplicationTarget struct {
	ID      string `json:"id" yaml:"id"`
	Backend string `json:"backend" yaml:"backend"`
}

// Backend is one storage backend at a site (a Cinder host@backend, a Manila
// pool, an RBD pool, a PostgreSQL cluster). Members are the service hosts of an
// active-active cluster that serve it; each holds its own active_backend_id.
type Backend struct {
	Name               string              `json:"name" yaml:"name"`
	Site               string              `json:"site" yaml:"site"`
	Type               string              `json:"type" yaml:"type"` // cinder, manila, rbd, postgres
	Members            []string            `json:"members,omitempty" yaml:"members,omitempty"`
	ReplicationTargets []ReplicationTarget `json:"replication_targets,omitempty" yaml:"replication_targets,omitempty"`
	// Observed state, written by runs, never by PUT.
	ReplicationStatus string `json:"replication_status,omitempty" yaml:"replication_status,omitempty"`
	ActiveBackendID   string `json:"active_backend_id,omitempty" yaml:"active_backend_id,omitempty"`
	Frozen            bool   `json:"frozen" yaml:"frozen,omitempty"`
}

// Consistency modes of a protection group.
const (
	ConsistencyCrash       = "crash"
	ConsistencyApplication = "application"
)

// Quiesce policies: what a planned failover does when guests cannot be quiesced.
const (
	QuiesceAbort    = "abort"    // roll the run back
	QuiesceContinue = "continue" // go on crash-consistent and flag it in the run
)

// Group is a protection group (a recovery plan): the unit a user protects and
// fails over.
type Group struct {
	Name            string           `json:"name" yaml:"name"`
	Project         string           `json:"project,omitempty" yaml:"project,omitempty"`
	PrimarySite     string           `json:"primary_site" yaml:"primary_site"`
	DRSite          string           `json:"dr_site" yaml:"dr_site"`
	RPOSeconds      int              `json:"rpo_seconds" yaml:"rpo_seconds"`
	RTOSeconds      int              `json:"rto_seconds,omitempty" yaml:"rto_seconds,omitempty"` // the RTO objective, 0: none
	Consistency     string           `json:"consistency" yaml:"consistency"`
	QuiescePolicy   string           `json:"quiesce_policy" yaml:"quiesce_policy"`
	Priority        int              `json:"priority,omitempty" yaml:"priority,omitempty"`
	Volumes         []Volume         `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	Shares          []Share          `json:"shares,omitempty" yaml:"shares,omitempty"`
	Tiers           []Tier           `json:"tiers" yaml:"tiers"`
	NetworkMappings []NetworkMapping `json:"network_mappings,omitempty" yaml:"network_mappings,omitempty"`
	DNSRecords      []DNSRecord      `json:"dns_records,omitempty" yaml:"dns_records,omitempty"`
	Checks          []Check          `json:"checks,omitempty" yaml:"checks,omitempty"`
	Approval        ApprovalPolicy   `json:"approval" yaml:"approval"`
	DrillSchedule   string           `json:"drill_schedule,omitempty" yaml:"drill_schedule,omitempty"`
	Hooks           []Hook           `json:"hooks,omitempty" yaml:"hooks,omitempty"`
	// ActiveSite is observed state: where the group runs now. Empty means the
	// primary site. Written by runs, never by PUT.
	ActiveSite string `json:"active_site,omitempty" yaml:"active_site,omitempty"`
}

// Volume is a replicated block volume of a group; Backend is the backend that
// holds its primary copy. Its replica at the DR site lives on that backend's
// replication target.
type Volume struct {
	Name    string `json:"name" yaml:"name"`
	Backend string `json:"backend" yaml:"backend"`
	SizeGB  int    `json:"size_gb,omitempty" yaml:"size_gb,omitempty"`
}

// Share is a replicated file share of a group (Manila).
type Share struct {
	Name    string `json:"name" yaml:"name"`
	Backend string `json:"backend" yaml:"backend"`
	SizeGB  int    `json:"size_gb,omitempty" yaml:"size_gb,omitempty"`
}

// Tier is one boot tier: its servers boot together, and every one of them is
// healthy before the next tier starts.
type Tier struct {
	Name    string   `json:"name" yaml:"name"`
	Servers []Server `json:"servers" yaml:"servers"`
}

// Server is a VM of a group. Volumes name the group's volumes it boots from or
// attaches; Networks name production networks, mapped at the DR site.
type Server struct {
	Name     string   `json:"name" yaml:"name"`
	Volumes  []string `json:"volumes,omitempty" yaml:"volumes,omitempty"`
	Networks []string `json:"networks,omitempty" yaml:"networks,omitempty"`
}

// NetworkMapping maps a production network to its DR twin and to the network
// used inside a drill's test bubble.
type NetworkMapping struct {
	Production string `json:"production" yaml:"production"`
	DR         string `json:"dr" yaml:"dr"`
	Test       string `json:"test,omitempty" yaml:"test,omitempty"`
}

// DNSRecord is a record a failover repoints: Primary is its value while the
// group runs at its primary site, DR its value after a failover.
type DNSRecord struct {
	Name    string `json:"name" yaml:"name"`
	Type    string `json:"type" yaml:"type"`
	TTL     int    `json:"ttl" yaml:"ttl"`
	Primary string `json:"primary" yaml:"primary"`
	DR      string `json:"dr" yaml:"dr"`
}

// Check kinds.
const (
	CheckHTTP = "http"
	CheckTCP  = "tcp"
	CheckDNS  = "dns"
	CheckSQL  = "sql"
)

// Check verifies that the service really works after a failover. Target is an
// address (URL, host:port, record name or DSN reference); Expect is what a pass
// looks like (an HTTP status, a record value, a query result).
type Check struct {
	Name   string `json:"name" yaml:"name"`
	Type   string `json:"type" yaml:"type"`
	Target string `json:"target" yaml:"target"`
	Expect string `json:"expect,omitempty" yaml:"expect,omitempty"`
}

// ApprovalPolicy says whether a run waits for a human before it acts.
type ApprovalPolicy struct {
	Required bool `json:"required" yaml:"required"`
	// Unplanned says whether unplanned failovers wait too; in a real disaster
	// the person launching the run is often the approver.
	Unplanned bool `json:"unplanned,omitempty" yaml:"unplanned,omitempty"`
}

// Servers lists the group's servers in boot order.
func (g Group) Servers() []Server {
	var out []Server
	for _, t := range g.Tiers {
		out = append(out, t.Servers...)
	}
	return out
}

// Inventory is a declarative document of sites, backends and groups, as read
// by `ferry apply -f` and used to seed the demo.
type Inventory struct {
	Sites    []Site    `json:"sites,omitempty" yaml:"sites,omitempty"`
	Backends []Backend `json:"backends,omitempty" yaml:"backends,omitempty"`
	Groups   []Group   `json:"groups,omitempty" yaml:"groups,omitempty"`
}

// Run kinds: the run catalog (DESIGN.md section 3).
const (
	KindFailover        = "failover"
	KindProtect         = "protect"
	KindUnprotect       = "unprotect"
	KindReprotect       = "reprotect"
	KindFailback        = "failback"
	KindDrill           = "drill"
	KindEvacuate        = "evacuate"
	KindBackendFailover = "backend-failover"
	KindSharePromote    = "share-promote"
	KindSuspend         = "suspend"
	KindResume          = "resume"
	KindMonitor         = "replication-monitor"
)

// Failover modes.
const (
	ModePlanned   = "planned"
	ModeUnplanned = "unplanned"
)

// Run states.
const (
	RunPending         = "pending"
	RunRunning         = "running"
	RunWaitingApproval = "waiting_approval"
	RunPaused          = "paused"
	RunCompleted       = "completed"
	RunRolledBack      = "rolled_back"
	RunFailed          = "failed"
	RunAborted         = "aborted"
)

// RunEnded reports whether a run state is final.
func RunEnded(state string) bool {
	switch state {
	case RunCompleted, RunRolledBack, RunFailed, RunAborted:
		return true
	}
	return false
}

// Step states.
const (
	StepPending     = "pending"
	StepRunning     = "running"
	StepCompleted   = "completed"
	StepFailed      = "failed"
	StepSkipped     = "skipped"
	StepCompensated = "compensated"
)

// Step is one named step of a run with its history.
type Step struct {
	Name     string     `json:"name"`
	State    string     `json:"state"`
	Started  *time.Time `json:"started,omitempty"`
	Ended    *time.Time `json:"ended,omitempty"`
	Attempts int        `json:"attempts"`
	Error    string     `json:"error,omitempty"`
	Note     string     `json:"note,omitempty"`
	// Output is what a hook step printed or answered (truncated).
	Output string `json:"output,omitempty"`
}

// Approval records who approved a run, and when.
type Approval struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Event is something an operator did to a run (pause, resume, retry, skip,
// abort), kept in the run's record.
type Event struct {
	Action  string    `json:"action"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Step    string    `json:"step,omitempty"`
	Comment string    `json:"comment,omitempty"`
}

// Run is one execution of a workflow, as the API shows it and the store keeps
// it.
type Run struct {
	ID          string `json:"id"` // Temporal's run id
	WorkflowID  string `json:"workflow_id"`
	Kind        string `json:"kind"`
	Group       string `json:"group,omitempty"`
	Site        string `json:"site,omitempty"` // the target site of a failover
	Backend     string `json:"backend,omitempty"`
	Mode        string `json:"mode,omitempty"`
	State       string `json:"state"`
	RequestedBy string `json:"requested_by,omitempty"`
	// StartedBy is the API token (its name) that started the run: unlike
	// RequestedBy, which the client states, the server sets it from the
	// request's authentication.
	StartedBy string `json:"started_by,omitempty"`
	// Project is the project of the run's group when the run started;
	// project-scoped tokens see the runs of their project only.
	Project string     `json:"project,omitempty"`
	Created time.Time  `json:"created"`
	Ended   *time.Time `json:"ended,omitempty"`
	// RPOSeconds is the achieved data-loss window; WritesLost the writes the
	// storage reported lost (-1 when the adapter cannot tell).
	RPOSeconds *float64   `json:"rpo_seconds,omitempty"`
	RTOSeconds *float64   `json:"rto_seconds,omitempty"`
	WritesLost *int64     `json:"writes_lost,omitempty"`
	Steps      []Step     `json:"steps"`
	Approvals  []Approval `json:"approvals,omitempty"`
	Events     []Event    `json:"events,omitempty"`
	Flags      []string   `json:"flags,omitempty"`
	Message    string     `json:"message,omitempty"`
	RunDetails
}

// RunDetails is what some run kinds add to their record.
type RunDetails struct {
	// Children are the child runs of an evacuation, one per group.
	Children []ChildRun `json:"children,omitempty"`
	// Checks are the verification checks run, with their results.
	Checks []CheckOutcome `json:"checks,omitempty"`
	// Touched lists every resource the run created, changed or removed.
	Touched []string `json:"touched,omitempty"`
	// WritesDiscarded counts writes a resync threw away: what a returning
	// old primary held that nobody replicated.
	WritesDiscarded *int64 `json:"writes_discarded,omitempty"`
	// Share is the share replica of a share-promote.
	Share string `json:"share,omitempty"`
}

// ChildRun is one group's run inside an evacuation.
type ChildRun struct {
	Group      string   `json:"group"`
	Priority   int      `json:"priority"`
	RunID      string   `json:"run_id,omitempty"`
	WorkflowID string   `json:"workflow_id,omitempty"`
	State      string   `json:"state"`
	Message    string   `json:"message,omitempty"`
	RTOSeconds *float64 `json:"rto_seconds,omitempty"`
	WritesLost *int64   `json:"writes_lost,omitempty"`
}

// CheckOutcome is one verification check's result in a run's record.
type CheckOutcome struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// Hook points: where a group's own steps run.
const (
	HookBeforeQuiesce = "before_quiesce"
	HookAfterSnapshot = "after_snapshot"
	HookAfterPromote  = "after_promote"
	HookAfterTier     = "after_tier" // after each tier is healthy
	HookBeforeCleanup = "before_cleanup"
)

// Hook failure policies.
const (
	HookAbort    = "abort"
	HookContinue = "continue"
	HookPause    = "pause"
)

// Hook is a group's own step at a named point of any run: an HTTP webhook
// (URL, POSTed the run's context as JSON) or a command the worker runs
// (Command, with the run's context in FERRY_* environment variables).
type Hook struct {
	Name           string   `json:"name" yaml:"name"`
	Point          string   `json:"point" yaml:"point"`
	URL            string   `json:"url,omitempty" yaml:"url,omitempty"`
	Command        []string `json:"command,omitempty" yaml:"command,omitempty"`
	TimeoutSeconds int      `json:"timeout_seconds,omitempty" yaml:"timeout_seconds,omitempty"`
	OnFailure      string   `json:"on_failure,omitempty" yaml:"on_failure,omitempty"`
}
