// Package conformance is the driver conformance suite: the checks every
// storage adapter must pass before Ferry trusts it with real data. An
// adapter's test calls Run with a Factory; the suite writes marker data on
// the primary through the fixture's Workload and proves, with that data,
// that the adapter reports replication truthfully, fails over without
// losing more than it says, fences and demotes for real, fails back, drills
// in isolation and tells retryable errors from permanent ones.
//
// It is a plain package (not a _test package) so that every adapter's tests
// can import it; see docs/driver-guide.md.
package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// Factory builds a fresh fixture for one check: the adapter under test, with
// two backends replicating the fixture's resources from the primary site to
// the DR site, replication running and caught up. It registers its own
// cleanup with t.Cleanup.
type Factory func(t *testing.T) *Fixture

// Fixture is what one check runs against.
type Fixture struct {
	Storage drivers.Storage
	// Network is optional: when set, the test-failover check creates a test
	// bubble at the DR site around the clones and destroys it afterwards.
	Network drivers.Network

	// Primary holds the resources' active replicas; DR their secondaries.
	Primary, DR Side
	// TargetID is the primary backend's replication target id for DR (the
	// active_backend_id a failover records).
	TargetID string
	// Resources are the replicated resources (volume, share or database
	// cluster names) the checks fail over.
	Resources []string

	Workload Workload
	Control  Control

	// ClockTolerance is how far the workload's marker timestamps and the
	// adapter's reported times may disagree (default 250ms).
	ClockTolerance time.Duration
	// CallTimeout bounds each port call (default 2 minutes): a call that
	// takes longer is a hang.
	CallTimeout time.Duration
	// WaitTimeout bounds waiting for replication to catch up (default 30s).
	WaitTimeout time.Duration
}

// Side is one backend of the pair.
type Side struct {
	Backend string
	Site    string
	// Members are the backend's cluster members (failover_completed goes to
	// each); an unclustered backend has one member, usually named after it.
	Members []string
}

// Marker is one write the workload made: a unique id the copies hold or not,
// and when it was committed (by the storage's own clock where it has one).
type Marker struct {
	ID string
	At time.Time
}

// Workload writes and reads marker data the way an application would.
type Workload interface {
	// Write writes one marker to resource's copy at site. It fails when that
	// copy does not accept writes (a secondary, a demoted or fenced one).
	Write(ctx context.Context, site, resource string) (Marker, error)
	// Markers lists the ids of the markers resource's copy at site holds.
	Markers(ctx context.Context, site, resource string) ([]string, error)
	// CloneMarkers lists the markers a test-failover clone holds.
	CloneMarkers(ctx context.Context, clone string) ([]string, error)
	// Clones lists the test-failover clones that exist on the storage (from
	// the storage itself, not from the adapter's bookkeeping).
	Clones(ctx context.Context) ([]string, error)
}

// CloneWriter is implemented by workloads that can write to a clone; the
// test-failover check then proves such writes stay in the clone.
type CloneWriter interface {
	WriteClone(ctx context.Context, clone string) (Marker, error)
}

// Control is what the suite needs from the fixture's environment.
type Control interface {
	// SetSiteDown makes a site unreachable (its backend stops answering,
	// like a power loss: writes not yet replicated stay behind) or brings
	// it back as it was.
	SetSiteDown(ctx context.Context, site string, down bool) error
	// SetStalled stops replication between the two sites (both directions),
	// so the secondaries fall behind, or lets it run again.
	SetStalled(ctx context.Context, stalled bool) error
}

func (f *Fixture) defaults() {
	if f.ClockTolerance == 0 {
		f.ClockTolerance = 250 * time.Millisecond
	}
	if f.CallTimeout == 0 {
		f.CallTimeout = 2 * time.Minute
	}
	if f.WaitTimeout == 0 {
		f.WaitTimeout = 30 * time.Second
	}
}
