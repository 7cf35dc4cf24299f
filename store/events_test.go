package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/stretchr/testify/require"
)

func TestReplicationEvents(t *testing.T) {
	s := storetest.New(t)
	seed(t, s)
	ctx := context.Background()
	require.NoError(t, s.ApplyInventory(ctx, ferry.Inventory{Groups: []ferry.Group{testGroup("crm")}}))

	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := func(id, group, sev string, at time.Time) ferry.ReplicationEvent {
		return ferry.ReplicationEvent{ID: id, Group: group, Resource: "db-data", Site: "west", Backend: "west-ceph",
			Severity: sev, LagSeconds: 150, RPOSeconds: 60, Message: sev + " " + id, At: at}
	}
	require.NoError(t, s.AddEvents(ctx, []ferry.ReplicationEvent{
		ev("m/1/db-data@west", "shop", ferry.SeverityWarning, t0),
		ev("m/2/db-data@west", "shop", ferry.SeverityCritical, t0.Add(time.Minute)),
		ev("m/2/crm@west", "crm", ferry.SeverityWarning, t0.Add(time.Minute)),
	}))
	// A retried write with the same ids stores nothing twice and changes
	// nothing; a new event lands beside them.
	changed := ev("m/1/db-data@west", "shop", ferry.SeverityResolved, t0.Add(time.Hour))
	require.NoError(t, s.AddEvents(ctx, []ferry.ReplicationEvent{changed, ev("m/3/db-data@west", "shop", ferry.SeverityResolved, t0.Add(2*time.Minute))}))

	got, err := s.ListEvents(ctx, "shop", 0)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, []string{"m/3/db-data@west", "m/2/db-data@west", "m/1/db-data@west"}, []string{got[0].ID, got[1].ID, got[2].ID}, "newest first")
	require.Equal(t, ferry.SeverityWarning, got[2].Severity, "a replayed id keeps its first event")
	require.Equal(t, ev("m/2/db-data@west", "shop", ferry.SeverityCritical, t0.Add(time.Minute)), got[1])

	limited, err := s.ListEvents(ctx, "shop", 1)
	require.NoError(t, err)
	require.Len(t, limited, 1)
	require.Equal(t, "m/3/db-data@west", limited[0].ID)

	all, err := s.ListEvents(ctx, "", 0)
	require.NoError(t, err)
	require.Len(t, all, 4)

	_, err = s.ListEvents(ctx, "nope", 0)
	requireErr(t, err, ferry.ENotFound, "")

	// Bad events are refused as a whole, naming the field.
	bad := ev("m/9/x", "shop", "info", t0)
	err = s.AddEvents(ctx, []ferry.ReplicationEvent{ev("m/8/x", "shop", ferry.SeverityWarning, t0), bad})
	requireErr(t, err, ferry.EInvalid, "events[1].severity")
	noID := ev("", "shop", ferry.SeverityWarning, t0)
	requireErr(t, s.AddEvents(ctx, []ferry.ReplicationEvent{noID}), ferry.EInvalid, "events[0].id")
	got, err = s.ListEvents(ctx, "shop", 0)
	require.NoError(t, err)
	require.Len(t, got, 3, "nothing of a refused batch is stored")

	// Events of a group that no longer exists are dropped; deleting a group
	// deletes its events.
	require.NoError(t, s.AddEvents(ctx, []ferry.ReplicationEvent{ev("m/4/ghost", "ghost", ferry.SeverityWarning, t0)}))
	require.NoError(t, s.DeleteGroup(ctx, "crm"))
	all, err = s.ListEvents(ctx, "", 0)
	require.NoError(t, err)
	for _, e := range all {
		require.Equal(t, "shop", e.Group, fmt.Sprint(e))
	}
	require.Len(t, all, 3)
}
