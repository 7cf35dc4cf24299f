package activities

import (
	"context"
	"fmt"
	"sync"
)

// BackendLimit bounds how many batch calls (snapshot, final sync, demote,
// promote) one worker process makes to one storage backend at once, so an
// evacuation's groups do not all land on the same array together. A call
// over the bound waits its turn; a promote heartbeats while it waits. With
// several workers the bound is per worker. A nil *BackendLimit bounds
// nothing.
type BackendLimit struct {
	n     int
	mu    sync.Mutex
	slots map[string]chan struct{}
}

// NewBackendLimit returns a bound of n calls per backend; n <= 0 means no
// bound (nil).
func NewBackendLimit(n int) *BackendLimit {
	if n <= 0 {
		return nil
	}
	return &BackendLimit{n: n, slots: map[string]chan struct{}{}}
}

// acquire takes one of backend's slots, waiting until one is free or ctx
// ends, and returns its release.
func (l *BackendLimit) acquire(ctx context.Context, backend string) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	ch, ok := l.slots[backend]
	if !ok {
		ch = make(chan struct{}, l.n)
		l.slots[backend] = ch
	}
	l.mu.Unlock()
	// A free slot is taken even if ctx has just ended (select would pick
	// at random between the two).
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	default:
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of backend %s's %d call slots: %w", backend, l.n, ctx.Err())
	}
}

// onBackend runs fn holding one of backend's slots.
func (a *Activities) onBackend(ctx context.Context, backend string, fn func() error) error {
	release, err := a.PerBackend.acquire(ctx, backend)
	if err != nil {
		return err
	}
	defer release()
	return fn()
}
