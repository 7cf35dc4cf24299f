package openstack

import (
	"context"
	"fmt"
	"sort"
)

// Feature is one thing Ferry does through an OpenStack API and the
// microversion it needs.
type Feature struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	Needs   string `json:"needs"`
}

// features lists, per microversioned service, what needs more than the
// base version: what an older cloud cannot do.
var features = []struct {
	svc  string // "volume", "share", "compute"
	name string
	v    mv
}{
	{"volume", "clustered (active-active) backends: status", mvCluster},
	{"volume", "group snapshots and drill copies (create-from-src)", mvGroups},
	{"volume", "failover, freeze and thaw of a cluster", mvRepl},
	{"volume", "group replication: failover_replication, enable, disable, targets", mvGroupRepl},
	{"share", "share services (GET /services)", mvShareServices},
	{"share", "share replicas: create, delete, promote, resync, replicated snapshots", mvShareRepl},
	{"share", "share replicas without the experimental header", mvShareReplGA},
	{"share", "promote with quiesce_wait_time", mvQuiesce},
	{"compute", "the compute port (servers, os-start, os-stop, boot from volume)", mvNova},
	{"compute", "boot with an explicit network list", mvNovaNetworks},
	{"compute", "the production server's flavor by name", mvNovaFlavor},
}

// SiteSupport is what one service endpoint of a site supports.
type SiteSupport struct {
	Site    string `json:"site"`
	Service string `json:"service"` // volume, share, compute
	// Min, Max: the endpoint's microversion range; Used: the highest Ferry
	// sends (Max, or the clouds.yaml cap).
	Min  string `json:"min,omitempty"`
	Max  string `json:"max,omitempty"`
	Used string `json:"used,omitempty"`
	// Missing are the features the endpoint (or the cap) does not allow.
	Missing []Feature `json:"missing,omitempty"`
	// Error says why the endpoint could not be read (unreachable, no
	// endpoint configured, ...).
	Error string `json:"error,omitempty"`
}

// Support reads the microversions of every service Ferry will use at every
// configured site — Cinder where volume backends are, Manila where share
// backends are, Nova everywhere — and lists what each cannot do, so an
// operator learns it when the worker starts, not half way through a
// failover.
func (a *Adapter) Support(ctx context.Context) []SiteSupport {
	want := map[string]map[string]bool{}
	add := func(site, svc string) {
		if want[site] == nil {
			want[site] = map[string]bool{}
		}
		want[site][svc] = true
	}
	for site := range a.cfg.Sites {
		add(site, "compute")
	}
	for _, b := range a.cfg.Backends {
		switch {
		case b.share():
			add(b.Site, "share")
		case b.Host != "" || b.Cluster != "":
			add(b.Site, "volume")
		}
	}
	var out []SiteSupport
	for site, svcs := range want {
		for svc := range svcs {
			out = append(out, a.support(ctx, site, svc))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Service < out[j].Service
	})
	return out
}

func (a *Adapter) support(ctx context.Context, site, svc string) SiteSupport {
	const op = "openstack.support"
	s := SiteSupport{Site: site, Service: svc}
	var n negotiated
	switch svc {
	case "volume":
		c, err := a.site(ctx, op, site)
		if err != nil {
			s.Error = err.Error()
			return s
		}
		n = c.ver
	case "share":
		c, err := a.client(ctx, op, site, svcShare)
		if err != nil {
			s.Error = err.Error()
			return s
		}
		n = c.ver
	case "compute":
		c, err := a.client(ctx, op, site, svcCompute)
		if err != nil {
			s.Error = err.Error()
			return s
		}
		n = c.ver
	default:
		s.Error = fmt.Sprintf("unknown service %q", svc)
		return s
	}
	s.Min, s.Max, s.Used = n.min.String(), n.max.String(), n.usable().String()
	for _, f := range features {
		if f.svc == svc && n.usable().less(f.v) {
			s.Missing = append(s.Missing, Feature{Service: svc, Name: f.name, Needs: f.v.String()})
		}
	}
	return s
}
