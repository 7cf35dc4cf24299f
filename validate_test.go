package ferry_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
)

func validGroup() ferry.Group {
	return ferry.Group{
		Name:        "shop",
		PrimarySite: "site-a",
		DRSite:      "site-b",
		RPOSeconds:  300,
		Volumes: []ferry.Volume{
			{Name: "db-root", Backend: "ceph-a"},
			{Name: "web-root", Backend: "ceph-a", SizeGB: 20},
		},
		Shares: []ferry.Share{{Name: "assets", Backend: "manila-a"}},
		Tiers: []ferry.Tier{
			{Name: "db", Servers: []ferry.Server{{Name: "db-1", Volumes: []string{"db-root"}, Networks: []string{"prod"}}}},
			{Name: "web", Servers: []ferry.Server{{Name: "web-1", Volumes: []string{"web-root"}}, {Name: "web-2"}}},
		},
		NetworkMappings: []ferry.NetworkMapping{{Production: "prod", DR: "prod-dr", Test: "bubble"}},
		DNSRecords:      []ferry.DNSRecord{{Name: "shop.example.com.", Type: "A", Primary: "10.0.0.1", DR: "10.1.0.1"}},
		Checks:          []ferry.Check{{Name: "home", Type: ferry.CheckHTTP, Target: "http://shop.example.com/", Expect: "200"}},
		DrillSchedule:   "0 3 * * 1",
	}
}

func validBackend() ferry.Backend {
	return ferry.Backend{
		Name:               "ceph-a",
		Site:               "site-a",
		Type:               ferry.BackendRBD,
		Members:            []string{"host-1", "host-2"},
		ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "ceph-b"}},
	}
}

// requireInvalid checks that err is an EInvalid *ferry.Error naming field.
func requireInvalid(t *testing.T, err error, field string) {
	t.Helper()
	require.Error(t, err)
	var fe *ferry.Error
	require.True(t, errors.As(err, &fe), "error %v is not a *ferry.Error", err)
	require.Equal(t, ferry.EInvalid, fe.Code)
	require.Equal(t, field, fe.Field, "message: %s", fe.Message)
	require.NotEmpty(t, fe.Message)
}

func TestSiteValidate(t *testing.T) {
	tests := []struct {
		name  string
		site  ferry.Site
		field string // empty: valid
	}{
		{"valid", ferry.Site{Name: "site-a", Description: "Frankfurt"}, ""},
		{"dots and underscores", ferry.Site{Name: "az1.fra_2"}, ""},
		{"one char", ferry.Site{Name: "a"}, ""},
		{"63 chars", ferry.Site{Name: strings.Repeat("a", 63)}, ""},
		{"missing name", ferry.Site{}, "name"},
		{"64 chars", ferry.Site{Name: strings.Repeat("a", 64)}, "name"},
		{"upper case", ferry.Site{Name: "Site-A"}, "name"},
		{"leading dash", ferry.Site{Name: "-a"}, "name"},
		{"trailing dot", ferry.Site{Name: "a."}, "name"},
		{"space", ferry.Site{Name: "a b"}, "name"},
		{"slash", ferry.Site{Name: "a/b"}, "name"},
		{"empty label key", ferry.Site{Name: "a", Labels: map[string]string{"": "x"}}, "labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.site.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			requireInvalid(t, err, tt.field)
		})
	}
}

func TestBackendValidate(t *testing.T) {
	tooMany := make([]string, ferry.MaxMembers+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("host-%d", i)
	}
	tests := []struct {
		name   string
		mutate func(b *ferry.Backend)
		field  string
	}{
		{"valid", func(b *ferry.Backend) {}, ""},
		{"every type", func(b *ferry.Backend) { b.Type = ferry.BackendSim }, ""},
		{"no members", func(b *ferry.Backend) { b.Members = nil }, ""},
		{"observed state is not checked", func(b *ferry.Backend) { b.ReplicationStatus = "whatever"; b.Frozen = true }, ""},
		{"missing name", func(b *ferry.Backend) { b.Name = "" }, "name"},
		{"bad name", func(b *ferry.Backend) { b.Name = "host@backend" }, "name"},
		{"missing site", func(b *ferry.Backend) { b.Site = "" }, "site"},
		{"missing type", func(b *ferry.Backend) { b.Type = "" }, "type"},
		{"unknown type", func(b *ferry.Backend) { b.Type = "nfs" }, "type"},
		{"duplicate member", func(b *ferry.Backend) { b.Members = []string{"h1", "h2", "h1"} }, "members[2]"},
		{"empty member", func(b *ferry.Backend) { b.Members = []string{"h1", " "} }, "members[1]"},
		{"too many members", func(b *ferry.Backend) { b.Members = tooMany }, "members"},
		{"target without id", func(b *ferry.Backend) { b.ReplicationTargets[0].ID = "" }, "replication_targets[0].id"},
		{"target id default", func(b *ferry.Backend) { b.ReplicationTargets[0].ID = "default" }, "replication_targets[0].id"},
		{"target without backend", func(b *ferry.Backend) { b.ReplicationTargets[0].Backend = "" }, "replication_targets[0].backend"},
		{"target is itself", func(b *ferry.Backend) { b.ReplicationTargets[0].Backend = b.Name }, "replication_targets[0].backend"},
		{"duplicate target id", func(b *ferry.Backend) {
			b.ReplicationTargets = append(b.ReplicationTargets, ferry.ReplicationTarget{ID: "site-b", Backend: "ceph-c"})
		}, "replication_targets[1].id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBackend()
			tt.mutate(&b)
			err := b.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			requireInvalid(t, err, tt.field)
		})
	}
}

func TestGroupValidate(t *testing.T) {
	manyServers := func(n int) []ferry.Server {
		s := make([]ferry.Server, n)
		for i := range s {
			s[i] = ferry.Server{Name: fmt.Sprintf("vm-%d", i)}
		}
		return s
	}
	manyVolumes := func(n int) []ferry.Volume {
		v := make([]ferry.Volume, n)
		for i := range v {
			v[i] = ferry.Volume{Name: fmt.Sprintf("vol-%d", i), Backend: "ceph-a"}
		}
		return v
	}
	tests := []struct {
		name   string
		mutate func(g *ferry.Group)
		field  string
	}{
		{"valid", func(g *ferry.Group) {}, ""},
		{"application consistency", func(g *ferry.Group) {
			g.Consistency = ferry.ConsistencyApplication
			g.QuiescePolicy = ferry.QuiesceContinue
		}, ""},
		{"minimal", func(g *ferry.Group) {
			g.Volumes, g.Shares, g.NetworkMappings, g.DNSRecords, g.Checks, g.DrillSchedule = nil, nil, nil, nil, nil, ""
			g.Tiers = []ferry.Tier{{Name: "all", Servers: []ferry.Server{{Name: "vm"}}}}
		}, ""},
		{"1000 servers", func(g *ferry.Group) {
			g.Tiers = []ferry.Tier{{Name: "a", Servers: manyServers(ferry.MaxServersPerGroup)}}
		}, ""},
		{"4000 volumes", func(g *ferry.Group) {
			g.Volumes = manyVolumes(ferry.MaxVolumesPerGroup)
			g.Tiers[0].Servers[0].Volumes = nil
			g.Tiers[1].Servers[0].Volumes = nil
		}, ""},
		{"active site dr", func(g *ferry.Group) { g.ActiveSite = g.DRSite }, ""},
		{"missing name", func(g *ferry.Group) { g.Name = "" }, "name"},
		{"bad name", func(g *ferry.Group) { g.Name = "Shop" }, "name"},
		{"missing primary site", func(g *ferry.Group) { g.PrimarySite = "" }, "primary_site"},
		{"missing dr site", func(g *ferry.Group) { g.DRSite = "" }, "dr_site"},
		{"same sites", func(g *ferry.Group) { g.DRSite = g.PrimarySite }, "dr_site"},
		{"zero rpo", func(g *ferry.Group) { g.RPOSeconds = 0 }, "rpo_seconds"},
		{"negative rpo", func(g *ferry.Group) { g.RPOSeconds = -5 }, "rpo_seconds"},
		{"huge rpo", func(g *ferry.Group) { g.RPOSeconds = 31 * 24 * 3600 }, "rpo_seconds"},
		{"bad consistency", func(g *ferry.Group) { g.Consistency = "strong" }, "consistency"},
		{"bad quiesce policy", func(g *ferry.Group) { g.QuiescePolicy = "pause" }, "quiesce_policy"},
		{"active site elsewhere", func(g *ferry.Group) { g.ActiveSite = "site-c" }, "active_site"},
		{"no tiers", func(g *ferry.Group) { g.Tiers = nil }, "tiers"},
		{"empty tier", func(g *ferry.Group) { g.Tiers[1].Servers = nil }, "tiers[1].servers"},
		{"tier without name", func(g *ferry.Group) { g.Tiers[0].Name = "" }, "tiers[0].name"},
		{"duplicate tier", func(g *ferry.Group) { g.Tiers[1].Name = "db" }, "tiers[1].name"},
		{"bad server name", func(g *ferry.Group) { g.Tiers[1].Servers[1].Name = "Web 2" }, "tiers[1].servers[1].name"},
		{"missing server name", func(g *ferry.Group) { g.Tiers[0].Servers[0].Name = "" }, "tiers[0].servers[0].name"},
		{"duplicate server across tiers", func(g *ferry.Group) { g.Tiers[1].Servers[1].Name = "db-1" }, "tiers[1].servers[1].name"},
		{"server volume not in group", func(g *ferry.Group) { g.Tiers[1].Servers[0].Volumes = []string{"web-root", "nope"} }, "tiers[1].servers[0].volumes[1]"},
		{"server empty network", func(g *ferry.Group) { g.Tiers[0].Servers[0].Networks = []string{""} }, "tiers[0].servers[0].networks[0]"},
		{"too many servers", func(g *ferry.Group) {
			g.Tiers = []ferry.Tier{{Name: "a", Servers: manyServers(600)}, {Name: "b", Servers: manyServers(401)}}
		}, "tiers"},
		{"too many volumes", func(g *ferry.Group) { g.Volumes = manyVolumes(ferry.MaxVolumesPerGroup + 1) }, "volumes"},
		{"duplicate volume", func(g *ferry.Group) { g.Volumes[1].Name = "db-root" }, "volumes[1].name"},
		{"volume without backend", func(g *ferry.Group) { g.Volumes[0].Backend = "" }, "volumes[0].backend"},
		{"negative volume size", func(g *ferry.Group) { g.Volumes[1].SizeGB = -1 }, "volumes[1].size_gb"},
		{"duplicate share", func(g *ferry.Group) { g.Shares = append(g.Shares, ferry.Share{Name: "assets", Backend: "m"}) }, "shares[1].name"},
		{"bad share name", func(g *ferry.Group) { g.Shares[0].Name = "_x" }, "shares[0].name"},
		{"mapping without dr", func(g *ferry.Group) { g.NetworkMappings[0].DR = "" }, "network_mappings[0].dr"},
		{"mapping without production", func(g *ferry.Group) { g.NetworkMappings[0].Production = "" }, "network_mappings[0].production"},
		{"duplicate mapping", func(g *ferry.Group) {
			g.NetworkMappings = append(g.NetworkMappings, ferry.NetworkMapping{Production: "prod", DR: "x"})
		}, "network_mappings[1].production"},
		{"dns type", func(g *ferry.Group) { g.DNSRecords[0].Type = "MX" }, "dns_records[0].type"},
		{"dns lower-case type", func(g *ferry.Group) { g.DNSRecords[0].Type = "a" }, "dns_records[0].type"},
		{"dns ttl too big", func(g *ferry.Group) { g.DNSRecords[0].TTL = 86401 }, "dns_records[0].ttl"},
		{"dns ttl negative", func(g *ferry.Group) { g.DNSRecords[0].TTL = -1 }, "dns_records[0].ttl"},
		{"dns ttl max", func(g *ferry.Group) { g.DNSRecords[0].TTL = 86400 }, ""},
		{"dns without name", func(g *ferry.Group) { g.DNSRecords[0].Name = "" }, "dns_records[0].name"},
		{"dns without dr value", func(g *ferry.Group) { g.DNSRecords[0].DR = "" }, "dns_records[0].dr"},
		{"dns duplicate", func(g *ferry.Group) {
			g.DNSRecords = append(g.DNSRecords, ferry.DNSRecord{Name: "SHOP.example.com", Type: "A", Primary: "1", DR: "2"})
		}, "dns_records[1].name"},
		{"check type", func(g *ferry.Group) { g.Checks[0].Type = "icmp" }, "checks[0].type"},
		{"check without target", func(g *ferry.Group) { g.Checks[0].Target = "" }, "checks[0].target"},
		{"check without name", func(g *ferry.Group) { g.Checks[0].Name = "" }, "checks[0].name"},
		{"every check type", func(g *ferry.Group) {
			g.Checks = []ferry.Check{
				{Name: "h", Type: "http", Target: "http://x"}, {Name: "t", Type: "tcp", Target: "x:1"},
				{Name: "d", Type: "dns", Target: "x."}, {Name: "s", Type: "sql", Target: "secret://db"},
			}
		}, ""},
		{"cron with 6 fields", func(g *ferry.Group) { g.DrillSchedule = "0 0 3 * * 1" }, "drill_schedule"},
		{"cron with 4 fields", func(g *ferry.Group) { g.DrillSchedule = "0 3 * *" }, "drill_schedule"},
		{"cron with junk", func(g *ferry.Group) { g.DrillSchedule = "0 3 * * $" }, "drill_schedule"},
		{"cron with names and steps", func(g *ferry.Group) { g.DrillSchedule = "*/15 1-5 * JAN-MAR mon,wed" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := validGroup()
			tt.mutate(&g)
			err := g.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			requireInvalid(t, err, tt.field)
		})
	}
}

func TestGroupDefaults(t *testing.T) {
	g := validGroup()
	g.DNSRecords = append(g.DNSRecords, ferry.DNSRecord{Name: "api", Type: "CNAME", TTL: 300, Primary: "a", DR: "b"})
	g.Defaults()
	require.Equal(t, ferry.ConsistencyCrash, g.Consistency)
	require.Equal(t, ferry.QuiesceAbort, g.QuiescePolicy)
	require.Equal(t, 60, g.DNSRecords[0].TTL)
	require.Equal(t, 300, g.DNSRecords[1].TTL, "a set ttl is kept")
	require.NoError(t, g.Validate())

	g.Consistency, g.QuiescePolicy = ferry.ConsistencyApplication, ferry.QuiesceContinue
	g.Defaults()
	require.Equal(t, ferry.ConsistencyApplication, g.Consistency, "a set value is kept")
	require.Equal(t, ferry.QuiesceContinue, g.QuiescePolicy)
}

func TestInventoryValidate(t *testing.T) {
	valid := func() ferry.Inventory {
		g2 := validGroup()
		g2.Name = "crm"
		return ferry.Inventory{
			Sites:    []ferry.Site{{Name: "site-a"}, {Name: "site-b"}},
			Backends: []ferry.Backend{validBackend()},
			Groups:   []ferry.Group{validGroup(), g2},
		}
	}
	tests := []struct {
		name   string
		mutate func(inv *ferry.Inventory)
		field  string
	}{
		{"valid", func(inv *ferry.Inventory) {}, ""},
		{"empty", func(inv *ferry.Inventory) { *inv = ferry.Inventory{} }, ""},
		{"site name", func(inv *ferry.Inventory) { inv.Sites[1].Name = "B" }, "sites[1].name"},
		{"duplicate site", func(inv *ferry.Inventory) { inv.Sites[1].Name = "site-a" }, "sites[1].name"},
		{"backend type", func(inv *ferry.Inventory) { inv.Backends[0].Type = "x" }, "backends[0].type"},
		{"backend member", func(inv *ferry.Inventory) { inv.Backends[0].Members[1] = "host-1" }, "backends[0].members[1]"},
		{"duplicate backend", func(inv *ferry.Inventory) { inv.Backends = append(inv.Backends, validBackend()) }, "backends[1].name"},
		{"nested group field", func(inv *ferry.Inventory) { inv.Groups[1].Tiers[0].Name = "" }, "groups[1].tiers[0].name"},
		{"group top field", func(inv *ferry.Inventory) { inv.Groups[0].RPOSeconds = 0 }, "groups[0].rpo_seconds"},
		{"duplicate group", func(inv *ferry.Inventory) { inv.Groups[1].Name = "shop" }, "groups[1].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := valid()
			tt.mutate(&inv)
			err := inv.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			requireInvalid(t, err, tt.field)
		})
	}
}
