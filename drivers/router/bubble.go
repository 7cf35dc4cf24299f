package router

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.BubbleCloner = (*Storage)(nil)

// TestFailoverStartIn sends the call to the backend's adapter, inside the
// bubble when that adapter can start clones there (drivers.BubbleCloner);
// an adapter that cannot gets TestFailoverStart, as a drill without the
// router would call it.
func (s *Storage) TestFailoverStartIn(ctx context.Context, key, backend string, resources []string, bubble string) ([]string, error) {
	st, err := s.storage("storage.test_failover_start", backend)
	if err != nil {
		return nil, err
	}
	if bc, ok := st.(drivers.BubbleCloner); ok {
		return bc.TestFailoverStartIn(ctx, key, backend, resources, bubble)
	}
	return st.TestFailoverStart(ctx, key, backend, resources)
}
