package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBackendLimit: a backend's slots are its own, a call over the bound
// waits (here: until its context ends, with an error naming the backend),
// and a released slot is free again. No timing is asserted.
func TestBackendLimit(t *testing.T) {
	l := NewBackendLimit(1)
	ctx := context.Background()
	release, err := l.acquire(ctx, "a-blk-00")
	require.NoError(t, err)

	full, cancel := context.WithCancel(ctx)
	cancel()
	_, err = l.acquire(full, "a-blk-00")
	require.ErrorContains(t, err, "waiting for one of backend a-blk-00's 1 call slots")

	other, err := l.acquire(full, "a-blk-01")
	require.NoError(t, err, "another backend's slots are free")
	other()

	release()
	again, err := l.acquire(full, "a-blk-00")
	require.NoError(t, err, "a released slot is free again")
	again()
}

func TestNoBackendLimit(t *testing.T) {
	require.Nil(t, NewBackendLimit(0))
	var a Activities // PerBackend nil: nothing is bounded
	calls := 0
	for range 3 {
		require.NoError(t, a.onBackend(context.Background(), "b", func() error { calls++; return nil }))
	}
	require.Equal(t, 3, calls)
}
