// Package activities holds the side effects of Ferry's runs. Activities are
// methods of one struct that carries their dependencies: the driver ports and
// the store. They never import a concrete adapter; the worker wires them.
//
// Every driver call carries an idempotency key (run id + step + target), so a
// retried or replayed activity changes nothing twice (invariant 3).
package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// Store is what activities need of the inventory and run records.
type Store interface {
	ferry.InventoryStore
	ferry.RunStore
	ferry.EventStore
}

// Activities carries the drivers and the store. Register one value with the
// worker; workflows call its methods through a nil *Activities.
type Activities struct {
	Drivers drivers.Set
	Store   Store
	// PerBackend bounds the batch calls this worker makes to one backend
	// at once (nil: no bound).
	PerBackend *BackendLimit
	// BootWave, when above 0, is how many servers of a tier boot at once.
	BootWave int
	// Runs, when set, is told of every run record RecordRun stored (the
	// worker's metrics observe durations there).
	Runs RunObserver
}

// RunObserver is told of each run's final record once it is stored.
type RunObserver interface {
	RunRecorded(ferry.Run)
}

// Error types that workflows and operators see in application errors.
const (
	ErrPermanent   = "permanent"
	ErrUnreachable = "unreachable"
	ErrPrecheck    = "precheck"
	ErrNotAcked    = "members-not-acknowledged"
	ErrChecks      = "checks-failed"
)

// wrap maps an adapter's typed error to Temporal's retry policy: permanent
// failures are not retried, everything else is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := fmt.Sprintf("%s: %v", op, err)
	switch drivers.Kind(err) {
	case drivers.Permanent:
		return temporal.NewNonRetryableApplicationError(msg, ErrPermanent, nil)
	case drivers.Unreachable:
		return temporal.NewApplicationError(msg, ErrUnreachable)
	default:
		return temporal.NewApplicationError(msg, drivers.Retryable)
	}
}

// Key builds an idempotency key from its parts: run id, step, target.
func Key(runID, step, target string) string {
	return runID + "/" + step + "/" + target
}
