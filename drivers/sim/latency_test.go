package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers/sim"
)

// TestOpLatencyDelaysEveryCallOfItsOperation: a modelled latency holds
// every call of its operation (it is not consumed like a fault), the
// caller's context cuts it short with an error that applies nothing, and other operations are not delayed. It asserts outcomes, not
// durations: an hour-long latency can only end through the context.
func TestOpLatencyDelaysEveryCallOfItsOperation(t *testing.T) {
	both(t, func(o *sim.Options) {
		o.OpLatency = map[string]time.Duration{"storage.promote": time.Hour}
	}, func(t *testing.T, e *env) {
		for i := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err := e.client.Promote(ctx, "lat/promote", cinderB, []string{dbVol}, true)
			cancel()
			// Only the caller's deadline can end an hour's latency.
			require.ErrorContains(t, err, "context deadline exceeded", "call %d", i)
		}
		require.Equal(t, siteA, info(t, e, dbVol).ActiveSite, "a promote cut short by its context applied nothing")

		hs, err := e.client.Health(context.Background(), siteA, []string{"db-1"})
		require.NoError(t, err, "an operation without a modelled latency answers")
		require.Len(t, hs, 1)
	})
}
