package bench

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGenerateFullSite: the site, exactly, and valid as Ferry
// validates an inventory.
func TestGenerateFullSite(t *testing.T) {
	inv, err := Generate(Full)
	require.NoError(t, err)
	require.NoError(t, inv.Validate(), "the generated inventory must be one Ferry accepts")
	require.Len(t, inv.Groups, 100)
	servers, volumes := 0, 0
	perBackend := map[string]int{}
	names := map[string]bool{}
	for _, g := range inv.Groups {
		require.Len(t, g.Tiers, 3, g.Name)
		for _, s := range g.Servers() {
			require.False(t, names[s.Name], "server %s twice", s.Name)
			names[s.Name] = true
		}
		servers += len(g.Servers())
		volumes += len(g.Volumes)
		used := map[string]bool{}
		for _, v := range g.Volumes {
			perBackend[v.Backend]++
			used[v.Backend] = true
		}
		require.Len(t, used, 2, "group %s: one batch per backend it uses", g.Name)
		require.Len(t, g.DNSRecords, 1)
		require.Len(t, g.Checks, 1)
	}
	require.Equal(t, 1000, servers)
	require.Equal(t, 4000, volumes)
	require.Len(t, perBackend, 10)
	for b, n := range perBackend {
		require.Equal(t, 400, n, "backend %s carries an even share", b)
	}
	require.Len(t, inv.Backends, 20, "10 replicated pairs")
	require.Equal(t, []int{4, 3, 3}, []int{len(inv.Groups[0].Tiers[0].Servers), len(inv.Groups[0].Tiers[1].Servers), len(inv.Groups[0].Tiers[2].Servers)})
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate(Full)
	require.NoError(t, err)
	b, err := Generate(Full)
	require.NoError(t, err)
	require.True(t, reflect.DeepEqual(a, b))
}

func TestShapeValidateNamesTheField(t *testing.T) {
	s := Full
	s.Tiers = 0
	_, err := Generate(s)
	require.ErrorContains(t, err, "tiers must be at least 1")
	s = Full
	s.BackendsPerGroup = 11
	require.ErrorContains(t, s.Validate(), "backends per group (11) exceeds backends (10)")
	s = Full
	s.ServersPerGroup = 2
	require.ErrorContains(t, s.Validate(), "3 tiers need at least as many servers per group, got 2")
}
