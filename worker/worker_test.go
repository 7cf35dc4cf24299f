package worker

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/activities"
)

func TestTunedAppliesTheOptions(t *testing.T) {
	acts := &activities.Activities{}
	got := tuned(acts, Options{MaxConcurrentPerBackend: 8, MaxBootsPerTier: 5})
	require.NotNil(t, got.PerBackend)
	require.Equal(t, 5, got.BootWave)
	require.Nil(t, acts.PerBackend, "the caller's activities are left as they are")
	require.Zero(t, acts.BootWave)

	require.Same(t, acts, tuned(acts, Options{}), "no bound asked: nothing to change")
}

func TestTunedKeepsTheCallersOwn(t *testing.T) {
	own := activities.NewBackendLimit(2)
	acts := &activities.Activities{PerBackend: own, BootWave: 3}
	got := tuned(acts, Options{MaxConcurrentPerBackend: 8, MaxBootsPerTier: 5})
	require.Same(t, own, got.PerBackend)
	require.Equal(t, 3, got.BootWave)
}
