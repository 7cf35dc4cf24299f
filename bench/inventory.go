// Package bench holds the pieces of `make bench` (cmd/ferry-bench drives
// them): a deterministic site-scale inventory, the latency model and the
// critical path it implies, the floor workflow Ferry is compared with, the
// counting of Temporal actions in histories, process statistics, the wrk
// load runs and the results table. Nothing here asserts a time: figures are
// reported, and docs/benchmarks.md judges them against the goals.
package bench

import (
	"fmt"

	"github.com/ferrydr/ferry"
)

// Shape sizes a generated site. The site is Full.
type Shape struct {
	Groups           int // protection groups
	ServersPerGroup  int // spread over the tiers
	VolumesPerServer int
	Backends         int // replicated backend pairs (one at each site)
	Tiers            int // boot tiers per group (at most 3 have names)
	// BackendsPerGroup is how many of the backends one group's volumes use:
	// each gives the group's failover one promote batch.
	BackendsPerGroup int
}

// Full is the site: 100 groups, 1,000 servers in 3 boot tiers,
// 4,000 volumes on 10 backends.
var Full = Shape{Groups: 100, ServersPerGroup: 10, VolumesPerServer: 4, Backends: 10, Tiers: 3, BackendsPerGroup: 2}

// Servers is the number of servers of the site.
func (s Shape) Servers() int { return s.Groups * s.ServersPerGroup }

// Volumes is the number of volumes of the site.
func (s Shape) Volumes() int { return s.Servers() * s.VolumesPerServer }

// Validate says which field of a shape cannot make a site.
func (s Shape) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"groups", s.Groups}, {"servers per group", s.ServersPerGroup}, {"volumes per server", s.VolumesPerServer},
		{"backends", s.Backends}, {"tiers", s.Tiers}, {"backends per group", s.BackendsPerGroup}} {
		if f.v < 1 {
			return fmt.Errorf("bench shape: %s must be at least 1, got %d", f.name, f.v)
		}
	}
	if s.BackendsPerGroup > s.Backends {
		return fmt.Errorf("bench shape: backends per group (%d) exceeds backends (%d)", s.BackendsPerGroup, s.Backends)
	}
	if s.Tiers > s.ServersPerGroup {
		return fmt.Errorf("bench shape: %d tiers need at least as many servers per group, got %d", s.Tiers, s.ServersPerGroup)
	}
	return nil
}

// Sites of the generated inventory: everything runs at SiteA and
// replicates to SiteB.
const (
	SiteA = "site-a"
	SiteB = "site-b"
)

var tierNames = []string{"database", "application", "web"}

func tierName(i int) string {
	if i < len(tierNames) {
		return tierNames[i]
	}
	return fmt.Sprintf("tier-%d", i+1)
}

// GroupName is the name of the i-th generated group.
func GroupName(i int) string { return fmt.Sprintf("g%03d", i) }

// Generate builds the inventory of a shape. It is deterministic: the same
// shape gives the same inventory, item for item, so runs compare.
//
// Backend i at site-a (a-blk-NN) replicates to b-blk-NN at site-b, whose
// two cluster members must each learn of a failover. Group i puts the
// volumes of its servers round-robin on BackendsPerGroup consecutive
// backends starting at i mod Backends, so every backend carries the same
// share of the site. Its servers fill the tiers in order, the first tiers
// taking the remainder (10 servers in 3 tiers are 4, 3 and 3). Each group has one DNS record and one http
// check, which the simulator passes once every server of the group runs at
// the site the record points to. Priorities fall in three classes so the
// evacuation's ordering has work to do.
func Generate(s Shape) (ferry.Inventory, error) {
	if err := s.Validate(); err != nil {
		return ferry.Inventory{}, err
	}
	inv := ferry.Inventory{Sites: []ferry.Site{
		{Name: SiteA, Description: "benchmark primary site (simulated)"},
		{Name: SiteB, Description: "benchmark DR site (simulated)"},
	}}
	for i := range s.Backends {
		a, b := backendName("a", i), backendName("b", i)
		inv.Backends = append(inv.Backends,
			ferry.Backend{Name: a, Site: SiteA, Type: "cinder", Members: []string{a + "-vol-1"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: SiteB, Backend: b}}},
			ferry.Backend{Name: b, Site: SiteB, Type: "cinder", Members: []string{b + "-vol-1", b + "-vol-2"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: SiteA, Backend: a}}},
		)
	}
	for gi := range s.Groups {
		inv.Groups = append(inv.Groups, group(s, gi))
	}
	return inv, nil
}

func backendName(site string, i int) string { return fmt.Sprintf("%s-blk-%02d", site, i) }

func group(s Shape, gi int) ferry.Group {
	name := GroupName(gi)
	g := ferry.Group{
		Name: name, Project: "bench", PrimarySite: SiteA, DRSite: SiteB, RPOSeconds: 60,
		Consistency: ferry.ConsistencyApplication, QuiescePolicy: ferry.QuiesceContinue,
		Priority: 10 * (3 - gi%3),
	}
	for t := range s.Tiers {
		tn := tierName(t)
		g.Tiers = append(g.Tiers, ferry.Tier{Name: tn})
		g.NetworkMappings = append(g.NetworkMappings, ferry.NetworkMapping{Production: "prod-" + tn, DR: "dr-" + tn, Test: "bubble-" + tn})
	}
	per, extra := s.ServersPerGroup/s.Tiers, s.ServersPerGroup%s.Tiers
	n, vol := 0, 0
	for t := range s.Tiers {
		count := per
		if t < extra {
			count++
		}
		for range count {
			sv := ferry.Server{Name: fmt.Sprintf("%s-s%02d", name, n), Networks: []string{"prod-" + tierName(t)}}
			for k := range s.VolumesPerServer {
				v := ferry.Volume{
					Name:    fmt.Sprintf("%s-v%02d", sv.Name, k),
					Backend: backendName("a", (gi+vol%s.BackendsPerGroup)%s.Backends),
					SizeGB:  20,
				}
				vol++
				g.Volumes = append(g.Volumes, v)
				sv.Volumes = append(sv.Volumes, v.Name)
			}
			g.Tiers[t].Servers = append(g.Tiers[t].Servers, sv)
			n++
		}
	}
	host := name + ".bench.example"
	g.DNSRecords = []ferry.DNSRecord{{Name: host, Type: "A", TTL: 60,
		Primary: fmt.Sprintf("10.1.%d.%d", gi/250, gi%250+1), DR: fmt.Sprintf("10.2.%d.%d", gi/250, gi%250+1)}}
	g.Checks = []ferry.Check{{Name: name + "-home", Type: ferry.CheckHTTP, Target: "http://" + host + "/", Expect: "200"}}
	return g
}
