package testsuite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
)

// TestPrechecksWaitOutAStoreOutage is the chaos suite's PostgreSQL restart
// made deterministic. The full matrix once crashed PostgreSQL just as a
// failover's precheck read its backends: the read failed ("connection reset
// by peer") and the precheck refused the run for good, as if the inventory
// were wrong. A failed read of the inventory must be an error Temporal
// retries; only a missing item refuses. Here the backends table goes away
// for a moment (the group can still be read, its backends cannot), on a
// real PostgreSQL.
func TestPrechecksWaitOutAStoreOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := storetest.URL(t)
	st, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	inv := demo.Inventory()
	require.NoError(t, st.ApplyInventory(ctx, inv))
	cloud := sim.NewCloud(sim.Options{})
	require.NoError(t, cloud.LoadInventory(inv))
	acts := &activities.Activities{Drivers: sim.NewInProcess(cloud).Set(), Store: st}

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx) //nolint:errcheck
	_, err = conn.Exec(ctx, `ALTER TABLE backends RENAME TO backends_away`)
	require.NoError(t, err)

	requireRetryable := func(what string, err error) {
		t.Helper()
		require.Error(t, err, what)
		var app *temporal.ApplicationError
		require.False(t, errors.As(err, &app) && app.NonRetryable(), "%s: a store outage refused the run for good: %v", what, err)
		require.Contains(t, err.Error(), "backend a-block", what)
	}
	_, err = acts.Precheck(ctx, activities.PlanInput{Group: "shop", Mode: ferry.ModePlanned})
	requireRetryable("failover precheck", err)
	_, err = acts.AssessFailover(ctx, activities.PlanInput{Group: "shop", Mode: ferry.ModePlanned})
	requireRetryable("failover dry run", err)
	_, err = acts.PlanLifecycle(ctx, activities.LifecycleInput{Group: "shop", Kind: ferry.KindSuspend})
	requireRetryable("lifecycle precheck", err)

	// Back: the same prechecks pass.
	_, err = conn.Exec(ctx, `ALTER TABLE backends_away RENAME TO backends`)
	require.NoError(t, err)
	plan, err := acts.Precheck(ctx, activities.PlanInput{Group: "shop", Mode: ferry.ModePlanned})
	require.NoError(t, err)
	require.Len(t, plan.Batches, 2)
	_, err = acts.PlanLifecycle(ctx, activities.LifecycleInput{Group: "shop", Kind: ferry.KindSuspend})
	require.NoError(t, err)
}
