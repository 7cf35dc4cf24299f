package sim

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

func siteCall(op, key, s string, names ...string) call {
	return call{op: op, key: key, target: s, targets: append([]string{s}, names...)}
}

// siteReachable fails Unreachable when the site is down.
func (c *Cloud) siteReachable(op, s string) error {
	st, ok := c.sites[s]
	if !ok {
		return perm(op, "unknown site %q", s)
	}
	if !st.up {
		return unreachable(op, "site %s is down", s)
	}
	return nil
}

// serversAt validates that every named server exists at the site.
func (c *Cloud) serversAt(op, s string, names []string) ([]*server, error) {
	if err := c.siteReachable(op, s); err != nil {
		return nil, err
	}
	out := make([]*server, 0, len(names))
	for _, n := range names {
		sv, ok := c.servers[s][n]
		if !ok {
			return nil, perm(op, "server %s does not exist at site %s", n, s)
		}
		out = append(out, sv)
	}
	return out, nil
}

func (c *Cloud) eachServer(ctx context.Context, op, key, s string, names []string, check func(*server) error, apply func(*server, time.Time)) error {
	_, err := mutate(ctx, c, siteCall(op, key, s, names...), func(now time.Time) (struct{}, error) {
		svs, err := c.serversAt(op, s, names)
		if err != nil {
			return struct{}{}, err
		}
		for _, sv := range svs {
			if check != nil {
				if err := check(sv); err != nil {
					return struct{}{}, err
				}
			}
		}
		for _, sv := range svs {
			apply(sv, now)
		}
		return struct{}{}, nil
	})
	return err
}

// Quiesce freezes the guests' file systems; quiesced servers stop writing.
func (c *Cloud) Quiesce(ctx context.Context, key, s string, servers []string) error {
	const op = "compute.quiesce"
	return c.eachServer(ctx, op, key, s, servers, func(sv *server) error {
		if sv.state != drivers.ServerRunning {
			return perm(op, "server %s is %s at site %s, not running", sv.name, sv.state, s)
		}
		return nil
	}, func(sv *server, _ time.Time) { sv.quiesced = true })
}

// Unquiesce thaws the guests' file systems.
func (c *Cloud) Unquiesce(ctx context.Context, key, s string, servers []string) error {
	return c.eachServer(ctx, "compute.unquiesce", key, s, servers, nil, func(sv *server, _ time.Time) { sv.quiesced = false })
}

// Stop stops servers; a stopped guest is no longer frozen.
func (c *Cloud) Stop(ctx context.Context, key, s string, servers []string) error {
	return c.eachServer(ctx, "compute.stop", key, s, servers, nil, func(sv *server, _ time.Time) {
		sv.state, sv.quiesced = drivers.ServerStopped, false
	})
}

// Start starts stopped servers where they are; they boot for BootTime.
func (c *Cloud) Start(ctx context.Context, key, s string, servers []string) error {
	return c.eachServer(ctx, "compute.start", key, s, servers, nil, func(sv *server, now time.Time) {
		c.startServer(sv, now)
	})
}

func (c *Cloud) startServer(sv *server, now time.Time) {
	if sv.state == drivers.ServerStopped || sv.state == drivers.ServerError {
		sv.state, sv.readyAt = drivers.ServerBooting, now.Add(c.opts.BootTime)
		if c.opts.BootTime <= 0 {
			sv.state = drivers.ServerRunning
		}
	}
}

// Boot creates servers at a site. Their volumes must be active there (or be
// test-failover clones there): a server cannot boot from a replica that is
// still a secondary.
func (c *Cloud) Boot(ctx context.Context, key, s string, specs []drivers.BootSpec) error {
	const op = "compute.boot"
	names := make([]string, 0, len(specs))
	for _, sp := range specs {
		names = append(names, sp.Name)
	}
	_, err := mutate(ctx, c, siteCall(op, key, s, names...), func(now time.Time) (struct{}, error) {
		if err := c.siteReachable(op, s); err != nil {
			return struct{}{}, err
		}
		for _, sp := range specs {
			for _, v := range sp.Volumes {
				if !c.volumeActiveAt(v, s) {
					return struct{}{}, perm(op, "server %s: volume %s is not active at site %s", sp.Name, v, s)
				}
			}
		}
		for _, sp := range specs {
			if sv, ok := c.servers[s][sp.Name]; ok {
				c.startServer(sv, now)
				continue
			}
			info := c.serverInfo[sp.Name]
			vols := sp.Volumes
			if len(vols) == 0 {
				vols = info.volumes
			}
			sv := &server{name: sp.Name, site: s, group: info.group, state: drivers.ServerStopped,
				volumes: vols, networks: sp.Networks}
			c.startServer(sv, now)
			c.siteServers(s)[sp.Name] = sv
		}
		return struct{}{}, nil
	})
	return err
}

func (c *Cloud) volumeActiveAt(v, s string) bool {
	if cl, ok := c.clones[v]; ok {
		return cl.site == s
	}
	r, ok := c.resources[v]
	return ok && !r.demoted && c.replicaSite(r.replicas[r.active]) == s
}

// Health reports each server's state at a site; absent servers say so.
func (c *Cloud) Health(ctx context.Context, s string, servers []string) ([]drivers.ServerHealth, error) {
	const op = "compute.health"
	return query(ctx, c, siteCall(op, "", s, servers...), func(time.Time) ([]drivers.ServerHealth, error) {
		if err := c.siteReachable(op, s); err != nil {
			return nil, err
		}
		out := []drivers.ServerHealth{}
		for _, n := range servers {
			h := drivers.ServerHealth{Name: n, Site: s, State: drivers.ServerAbsent}
			if sv, ok := c.servers[s][n]; ok {
				h.State = sv.state
				h.Healthy = sv.state == drivers.ServerRunning
			}
			out = append(out, h)
		}
		return out, nil
	})
}

// --- network ----------------------------------------------------------------

// MapNetworks creates each mapping's target network at the site if missing.
func (c *Cloud) MapNetworks(ctx context.Context, key, s string, mappings []drivers.NetworkMapping) error {
	const op = "network.map_networks"
	var names []string
	for _, m := range mappings {
		names = append(names, m.From, m.To)
	}
	_, err := mutate(ctx, c, siteCall(op, key, s, names...), func(time.Time) (struct{}, error) {
		if err := c.siteReachable(op, s); err != nil {
			return struct{}{}, err
		}
		for _, m := range mappings {
			if m.To == "" {
				return struct{}{}, perm(op, "mapping of %q has no target network", m.From)
			}
		}
		for _, m := range mappings {
			c.siteNetworks(s)[m.To] = true
		}
		return struct{}{}, nil
	})
	return err
}

// CreateBubble creates an isolated network (no route to production).
func (c *Cloud) CreateBubble(ctx context.Context, key, s, name string) (string, error) {
	const op = "network.create_bubble"
	return mutate(ctx, c, siteCall(op, key, s, name), func(time.Time) (string, error) {
		if err := c.siteReachable(op, s); err != nil {
			return "", err
		}
		b := &bubble{id: c.id("bubble"), site: s, name: name}
		c.bubbles[b.id] = b
		return b.id, nil
	})
}

// DestroyBubble deletes a bubble and the servers booted inside it: the port
// has no server delete, and a drill's servers exist only for the bubble, so
// tearing the bubble down is what leaves nothing behind. An unknown id is
// already gone.
func (c *Cloud) DestroyBubble(ctx context.Context, key, s, id string) error {
	const op = "network.destroy_bubble"
	_, err := mutate(ctx, c, siteCall(op, key, s, id), func(time.Time) (struct{}, error) {
		if err := c.siteReachable(op, s); err != nil {
			return struct{}{}, err
		}
		b, ok := c.bubbles[id]
		if !ok || b.site != s {
			return struct{}{}, nil
		}
		for n, sv := range c.servers[s] {
			if c.inBubble(sv, b) {
				delete(c.servers[s], n)
			}
		}
		delete(c.bubbles, id)
		return struct{}{}, nil
	})
	return err
}

func (c *Cloud) inBubble(sv *server, b *bubble) bool {
	return contains(sv.networks, b.id) || (b.name != "" && contains(sv.networks, b.name))
}

// --- DNS --------------------------------------------------------------------

func (c *Cloud) lookup(name, typ string) (drivers.Record, bool) {
	r, ok := c.records[recordKey{normName(name), strings.ToUpper(typ)}]
	return r, ok
}

// Get reads one record of the zone.
func (c *Cloud) Get(ctx context.Context, name, typ string) (drivers.Record, error) {
	const op = "dns.get"
	return query(ctx, c, call{op: op, targets: []string{name}}, func(time.Time) (drivers.Record, error) {
		r, ok := c.lookup(name, typ)
		if !ok {
			return drivers.Record{}, perm(op, "no %s record %q", typ, name)
		}
		return r, nil
	})
}

// Replace creates or replaces one record of the zone.
func (c *Cloud) Replace(ctx context.Context, key string, r drivers.Record) error {
	const op = "dns.replace"
	_, err := mutate(ctx, c, call{op: op, key: key, target: r.Name, targets: []string{r.Name}}, func(time.Time) (struct{}, error) {
		if r.Name == "" || r.Type == "" {
			return struct{}{}, perm(op, "record needs a name and a type")
		}
		c.records[recordKey{normName(r.Name), strings.ToUpper(r.Type)}] = r
		return struct{}{}, nil
	})
	return err
}

// --- verify -----------------------------------------------------------------

// Check runs a verification check from a network at a site:
//   - dns: the record Target resolves in the zone to Expect (any value if
//     Expect is empty);
//   - http, tcp: Target's host resolves (A record) to an address that the
//     inventory says a group serves at this site, and every server of that
//     group is running here. From inside a bubble, the bubble stands in for
//     its own DNS: the address's group must be running inside the bubble;
//   - sql: a stand-in that passes when the site is up, since the simulator
//     has no databases.
func (c *Cloud) Check(ctx context.Context, s, network string, spec drivers.CheckSpec) (drivers.CheckResult, error) {
	const op = "verify.check"
	start := time.Now()
	return query(ctx, c, siteCall(op, "", s, spec.Name, network), func(time.Time) (drivers.CheckResult, error) {
		res := drivers.CheckResult{Name: spec.Name}
		if err := c.siteReachable(op, s); err != nil {
			return res, err
		}
		var detail string
		switch spec.Type {
		case "dns":
			detail = c.checkDNS(spec)
		case "http", "tcp":
			detail = c.checkService(s, network, spec)
		case "sql":
		default:
			return res, perm(op, "check %s: unknown type %q", spec.Name, spec.Type)
		}
		res.Passed, res.Detail, res.Elapsed = detail == "", detail, time.Since(start)
		return res, nil
	})
}

func (c *Cloud) checkDNS(spec drivers.CheckSpec) string {
	r, ok := c.lookup(spec.Target, "A")
	if !ok {
		for k, rec := range c.records {
			if k.name == normName(spec.Target) {
				r, ok = rec, true
				break
			}
		}
	}
	if !ok {
		return fmt.Sprintf("no record %q in the zone", spec.Target)
	}
	if spec.Expect != "" && r.Value != spec.Expect {
		return fmt.Sprintf("%s resolves to %s, want %s", spec.Target, r.Value, spec.Expect)
	}
	return ""
}

func checkHost(target string) string {
	if strings.Contains(target, "://") {
		if u, err := url.Parse(target); err == nil {
			return u.Hostname()
		}
	}
	if h, _, err := net.SplitHostPort(target); err == nil {
		return h
	}
	return target
}

func (c *Cloud) checkService(s, network string, spec drivers.CheckSpec) string {
	host := checkHost(spec.Target)
	addr := host
	if net.ParseIP(host) == nil {
		r, ok := c.lookup(host, "A")
		if !ok {
			return fmt.Sprintf("%s does not resolve: no A record", host)
		}
		addr = r.Value
	}
	svc, ok := c.services[addr]
	if !ok {
		return fmt.Sprintf("%s resolves to %s, which no group serves", host, addr)
	}
	var bub *bubble
	for _, b := range c.bubbles {
		if b.site == s && network != "" && (b.id == network || b.name == network) {
			bub = b
		}
	}
	if bub == nil && svc.site != s {
		return fmt.Sprintf("%s resolves to %s, which group %s serves at site %s, not %s", host, addr, svc.group, svc.site, s)
	}
	var down []string
	if g := c.groups[svc.group]; g != nil {
		for _, n := range g.servers {
			sv, ok := c.servers[s][n]
			switch {
			case !ok:
				down = append(down, n+" (absent)")
			case bub != nil && !c.inBubble(sv, bub):
				down = append(down, n+" (not in bubble)")
			case sv.state != drivers.ServerRunning:
				down = append(down, n+" ("+sv.state+")")
			}
		}
	}
	if len(down) > 0 {
		sort.Strings(down)
		return fmt.Sprintf("group %s is not serving at site %s: %s", svc.group, s, strings.Join(down, ", "))
	}
	return ""
}
