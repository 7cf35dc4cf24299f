package activities

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
)

// bootTier runs BootTier as an activity on the simulator (servers without
// volumes, so they boot anywhere) and returns the simulator's boot calls.
func bootTier(t *testing.T, wave, servers int) ([]sim.LedgerEntry, []sim.ServerState) {
	t.Helper()
	cloud := sim.NewCloud(sim.Options{})
	require.NoError(t, cloud.LoadInventory(ferry.Inventory{Sites: []ferry.Site{{Name: "site-b"}}}))
	acts := &Activities{Drivers: sim.NewInProcess(cloud).Set(), BootWave: wave}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	in := BootInput{Key: "run/boot:web/site-b", Site: "site-b", Tier: "web"}
	for i := range servers {
		in.Servers = append(in.Servers, drivers.BootSpec{Name: fmt.Sprintf("web-%d", i)})
	}
	_, err := env.ExecuteActivity(acts.BootTier, in)
	require.NoError(t, err)
	var boots []sim.LedgerEntry
	for _, e := range cloud.Ledger() {
		if e.Op == "compute.boot" {
			boots = append(boots, e)
		}
	}
	st, err := sim.NewInProcess(cloud).State(context.Background())
	require.NoError(t, err)
	return boots, st.Servers
}

// TestBootTierInWaves: with a boot wave of 2, a tier of 5 boots in three
// calls under keys of their own, and every server ends running.
func TestBootTierInWaves(t *testing.T) {
	boots, servers := bootTier(t, 2, 5)
	require.Len(t, boots, 3)
	for i, b := range boots {
		require.Equal(t, fmt.Sprintf("run/boot:web/site-b/wave-%d", i+1), b.Key)
		require.Equal(t, sim.OutcomeApplied, b.Outcome)
	}
	require.Len(t, servers, 5)
	for _, s := range servers {
		require.Equal(t, drivers.ServerRunning, s.State, s.Name)
	}
}

// TestBootTierWhole: without a wave (or one as large as the tier) the tier
// boots in one call under the step's own key, as it always did.
func TestBootTierWhole(t *testing.T) {
	for _, wave := range []int{0, 5, 9} {
		boots, servers := bootTier(t, wave, 5)
		require.Len(t, boots, 1, "wave %d", wave)
		require.Equal(t, "run/boot:web/site-b", boots[0].Key)
		require.Len(t, servers, 5)
	}
}
