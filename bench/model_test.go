package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
)

var testModel = Latency{Promote: 2 * time.Second, Boot: 5 * time.Second, Health: 100 * time.Millisecond, DNS: 500 * time.Millisecond, Verify: 300 * time.Millisecond}

func TestGroupPath(t *testing.T) {
	inv, err := Generate(Full)
	require.NoError(t, err)
	// promote + 3 tiers of boot + one record + one check
	require.Equal(t, 2*time.Second+3*5*time.Second+500*time.Millisecond+300*time.Millisecond, GroupPath(inv.Groups[0], testModel))

	// A health read slower than the boot is the tier's floor.
	slow := testModel
	slow.Health = 7 * time.Second
	require.Equal(t, 2*time.Second+3*7*time.Second+800*time.Millisecond, GroupPath(inv.Groups[0], slow))

	// No storage, no promote; an empty tier boots nothing.
	g := ferry.Group{Tiers: []ferry.Tier{{Name: "empty"}}}
	require.Zero(t, GroupPath(g, testModel))
	require.Zero(t, GroupPath(inv.Groups[0], Zero))
}

func TestCriticalPathSchedulesBySlidingWindow(t *testing.T) {
	one := func(name string, prio, tiers int) ferry.Group {
		g := ferry.Group{Name: name, Priority: prio}
		for range tiers {
			g.Tiers = append(g.Tiers, ferry.Tier{Servers: []ferry.Server{{Name: name}}})
		}
		return g
	}
	l := Latency{Boot: time.Second}
	// a: 3 s, b: 1 s, c: 1 s, d: 2 s; priority order a, b, c, d.
	gs := []ferry.Group{one("d", 1, 2), one("c", 5, 1), one("a", 9, 3), one("b", 5, 1)}
	// One at a time: the sum.
	require.Equal(t, 7*time.Second, CriticalPath(gs, l, 1))
	// Two at once: a [0,3]; b [0,1]; c [1,2]; d [2,4].
	require.Equal(t, 4*time.Second, CriticalPath(gs, l, 2))
	// All at once: the longest.
	require.Equal(t, 3*time.Second, CriticalPath(gs, l, 10))
}

func TestFullSiteCriticalPath(t *testing.T) {
	inv, err := Generate(Full)
	require.NoError(t, err)
	per := GroupPath(inv.Groups[0], testModel)
	// 100 equal groups, 25 at a time: four waves.
	require.Equal(t, 4*per, CriticalPath(inv.Groups, testModel, 25))
}

func TestSimOptionsCarryTheModel(t *testing.T) {
	o := testModel.SimOptions()
	require.Equal(t, 5*time.Second, o.BootTime)
	require.Equal(t, map[string]time.Duration{
		"storage.promote": 2 * time.Second, "compute.health": 100 * time.Millisecond,
		"dns.replace": 500 * time.Millisecond, "verify.check": 300 * time.Millisecond,
	}, o.OpLatency)
	require.Zero(t, o.DefaultLag)
	require.Zero(t, o.WorkloadInterval)
}
