package openstack

// The compute port on Nova (compute API v2.1, microversion negotiated per
// site): servers are found by name at a site, stopped and started with the
// os-stop and os-start actions, and booted at the DR site from their
// replicated volumes (block_device_mapping_v2, source and destination
// "volume"), on the mapped networks, keeping the production server's
// fixed IPs where the DR network's subnets hold them.
//
// Nova allows two servers of one name; Ferry addresses servers by name, so
// a name that is not unique at a site is an error that says so.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.Compute = (*Adapter)(nil)

// Microversions of Nova's API that the compute port uses, and what for.
var (
	mvNova         = mv{2, 1}  // servers, os-start, os-stop, block_device_mapping_v2
	mvNovaNetworks = mv{2, 37} // a create must say "networks" ("none" for no NIC)
	mvNovaFlavor   = mv{2, 47} // a server shows its flavor by name (original_name)
)

// Nova's server statuses the port reads.
const (
	novaActive  = "ACTIVE"
	novaShutoff = "SHUTOFF"
	novaBuild   = "BUILD"
	novaError   = "ERROR"
)

// nova returns a site's Nova client at the highest microversion Ferry
// uses there.
func (a *Adapter) nova(ctx context.Context, op, site string) (*gophercloud.ServiceClient, mv, error) {
	c, err := a.client(ctx, op, site, svcCompute)
	if err != nil {
		return nil, mv{}, err
	}
	if err := c.ver.need(mvNova, "the compute port"); err != nil {
		return nil, mv{}, drivers.Errorf(drivers.Permanent, op, "site %s: %v", site, err)
	}
	v := c.ver.usable()
	return at(c.sc, v), v, nil
}

// serverNamed finds the one server of a name at a site (nil if there is
// none). Nova's name filter is a regular expression; the anchored, quoted
// name matches it alone, and the exact compare drops the rest.
func (a *Adapter) serverNamed(ctx context.Context, op string, sc *gophercloud.ServiceClient, site, name string) (*servers.Server, error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := servers.List(sc, servers.ListOpts{Name: "^" + regexp.QuoteMeta(name) + "$", AllTenants: true}).AllPages(rctx)
	if err != nil {
		return nil, fmt.Errorf("site %s: list servers named %s: %w", site, name, err)
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, fmt.Errorf("site %s: read servers named %s: %w", site, name, err)
	}
	var found []servers.Server
	for _, s := range all {
		if s.Name == name {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return &found[0], nil
	}
	ids := make([]string, len(found))
	for i, s := range found {
		ids[i] = s.ID
	}
	return nil, drivers.Errorf(drivers.Permanent, op, "site %s has %d servers named %s (%s); Ferry addresses servers by name and cannot tell which one is meant", site, len(found), name, strings.Join(ids, ", "))
}

// serversNamed finds every named server at the site; one that is missing
// is an error, so nothing is changed for a list with a wrong name.
func (a *Adapter) serversNamed(ctx context.Context, op string, sc *gophercloud.ServiceClient, site string, names []string) ([]*servers.Server, error) {
	out := make([]*servers.Server, 0, len(names))
	for _, n := range names {
		if n == "" {
			return nil, drivers.Errorf(drivers.Permanent, op, "a server name is empty")
		}
		s, err := a.serverNamed(ctx, op, sc, site, n)
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, drivers.Errorf(drivers.Permanent, op, "server %s does not exist at site %s", n, site)
		}
		out = append(out, s)
	}
	return out, nil
}

// Quiesce cannot be done through Nova: it has no API that freezes a
// guest's file systems on demand.
func (a *Adapter) Quiesce(ctx context.Context, key, site string, names []string) error {
	return drivers.Errorf(drivers.Permanent, "compute.quiesce", "Nova has no API to freeze a guest's file systems on demand: it freezes them only through qemu-guest-agent while it snapshots a volume-backed server (createImage), and thaws them right after; quiesce the application with the group's hooks, or run the group crash-consistent")
}

// Unquiesce has nothing to thaw: this adapter never froze a guest (Quiesce
// always refuses). It succeeds, so that the undo a run does after a failed
// quiesce does not stop the run for an operator over nothing.
func (a *Adapter) Unquiesce(ctx context.Context, key, site string, names []string) error {
	_, err := mutate(ctx, a, "compute.unquiesce", key, func() (struct{}, error) { return struct{}{}, nil })
	return err
}

// Stop stops the servers (os-stop) and waits until Nova shows them
// SHUTOFF: a stopped server writes no more, which the failover counts on
// before its last sync. A server already SHUTOFF is done.
func (a *Adapter) Stop(ctx context.Context, key, site string, names []string) error {
	const op = "compute.stop"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		sc, _, err := a.nova(ctx, op, site)
		if err != nil {
			return struct{}{}, err
		}
		found, err := a.serversNamed(ctx, op, sc, site, names)
		if err != nil {
			return struct{}{}, err
		}
		for _, s := range found {
			if s.Status == novaShutoff {
				continue
			}
			if err := a.serverAction(ctx, op, sc, site, s, "os-stop", novaShutoff, "powering-off"); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, a.waitStatus(ctx, op, sc, site, found, novaShutoff)
	})
	return err
}

// Start starts stopped servers again (os-start), without waiting: Health
// tells when they run. A server ACTIVE or still building is left as it
// is; one in ERROR, or paused, suspended or shelved, is not Ferry's to
// start, and the error says which state it is in.
func (a *Adapter) Start(ctx context.Context, key, site string, names []string) error {
	const op = "compute.start"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		sc, _, err := a.nova(ctx, op, site)
		if err != nil {
			return struct{}{}, err
		}
		found, err := a.serversNamed(ctx, op, sc, site, names)
		if err != nil {
			return struct{}{}, err
		}
		for _, s := range found {
			if err := startable(op, site, s); err != nil {
				return struct{}{}, err
			}
		}
		for _, s := range found {
			if s.Status != novaShutoff {
				continue
			}
			if err := a.serverAction(ctx, op, sc, site, s, "os-start", novaActive, "powering-on"); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// startable says whether Start (and Boot, for a server that exists) can
// leave the server running: SHUTOFF is started, ACTIVE and BUILD are on
// their way already.
func startable(op, site string, s *servers.Server) error {
	switch s.Status {
	case novaShutoff, novaActive, novaBuild:
		return nil
	case novaError:
		return drivers.Errorf(drivers.Permanent, op, "server %s (%s) is in ERROR at site %s (%s): os-start needs SHUTOFF, and Ferry does not rebuild servers", s.Name, s.ID, site, faultOf(s))
	}
	return drivers.Errorf(drivers.Permanent, op, "server %s (%s) is %s at site %s: Ferry starts only SHUTOFF servers", s.Name, s.ID, s.Status, site)
}

func faultOf(s *servers.Server) string {
	if s.Fault.Message != "" {
		return "Nova's fault: " + s.Fault.Message
	}
	return "Nova shows no fault"
}

// serverAction sends os-stop or os-start. Nova answers 409 when the server
// is not in a state the action takes: if it has reached the wanted status
// meanwhile, or is on its way there (task_state), that is done; else the
// 409 stands (retryable: a server still building will take it later).
func (a *Adapter) serverAction(ctx context.Context, op string, sc *gophercloud.ServiceClient, site string, s *servers.Server, action, want, task string) error {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	var err error
	if action == "os-stop" {
		err = servers.Stop(rctx, sc, s.ID).ExtractErr()
	} else {
		err = servers.Start(rctx, sc, s.ID).ExtractErr()
	}
	if err == nil {
		return nil
	}
	if gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		now, gerr := servers.Get(rctx, sc, s.ID).Extract()
		if gerr == nil && (now.Status == want || now.TaskState == task) {
			return nil
		}
		if gerr == nil {
			return fmt.Errorf("site %s: Nova refused %s of server %s (status %s, vm_state %s, task_state %q): %w", site, action, s.Name, now.Status, now.VmState, now.TaskState, err)
		}
	}
	return fmt.Errorf("site %s: %s of server %s: %w", site, action, s.Name, err)
}

// waitStatus polls Nova until every server shows want, within the settle
// timeout and the caller's context.
func (a *Adapter) waitStatus(ctx context.Context, op string, sc *gophercloud.ServiceClient, site string, list []*servers.Server, want string) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	pending := map[string]*servers.Server{}
	for _, s := range list {
		pending[s.ID] = s
	}
	for {
		for id, s := range pending {
			rctx, rcancel := a.withTimeout(ctx)
			now, err := servers.Get(rctx, sc, id).Extract()
			rcancel()
			switch {
			case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
				return drivers.Errorf(drivers.Permanent, op, "server %s (%s) vanished at site %s while Ferry waited for %s", s.Name, id, site, want)
			case err != nil:
				if ctx.Err() != nil {
					return drivers.Errorf(drivers.Retryable, op, "server %s at site %s is not %s after %s: %v", s.Name, site, want, a.cfg.SettleTimeout, err)
				}
				return fmt.Errorf("site %s: read server %s: %w", site, s.Name, err)
			case now.Status == want:
				delete(pending, id)
			case now.Status == novaError:
				return drivers.Errorf(drivers.Permanent, op, "server %s went to ERROR at site %s while Ferry waited for %s (%s)", s.Name, site, want, faultOf(now))
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var names []string
			for _, s := range pending {
				names = append(names, s.Name)
			}
			sort.Strings(names)
			return drivers.Errorf(drivers.Retryable, op, "servers %s at site %s are not %s after %s", strings.Join(names, ", "), site, want, a.cfg.SettleTimeout)
		case <-time.After(pollEvery):
		}
	}
}

// Health reads each server at the site: ACTIVE and running is running
// (healthy); SHUTOFF, and paused, suspended or shelved, stopped; BUILD and
// the other transitions booting; ERROR error; no server absent.
func (a *Adapter) Health(ctx context.Context, site string, names []string) ([]drivers.ServerHealth, error) {
	const op = "compute.health"
	sc, _, err := a.nova(ctx, op, site)
	if err != nil {
		return nil, err
	}
	out := make([]drivers.ServerHealth, 0, len(names))
	for _, n := range names {
		s, err := a.serverNamed(ctx, op, sc, site, n)
		if err != nil {
			return nil, classify(ctx, op, err)
		}
		h := drivers.ServerHealth{Name: n, Site: site, State: drivers.ServerAbsent}
		if s != nil {
			h.State = novaHealth(s)
			h.Healthy = h.State == drivers.ServerRunning
		}
		out = append(out, h)
	}
	return out, nil
}

// novaHealth maps Nova's status and power state to the port's states.
func novaHealth(s *servers.Server) string {
	switch s.Status {
	case novaActive:
		switch {
		case s.PowerState == servers.RUNNING && s.TaskState == "":
			return drivers.ServerRunning
		case s.PowerState == servers.SHUTDOWN || s.PowerState == servers.CRASHED:
			return drivers.ServerStopped
		}
		return drivers.ServerBooting
	case novaShutoff, "PAUSED", "SUSPENDED", "SHELVED", "SHELVED_OFFLOADED":
		return drivers.ServerStopped
	case novaError:
		return drivers.ServerError
	}
	// BUILD, REBUILD, REBOOT, HARD_REBOOT, MIGRATING, RESIZE, ... and
	// UNKNOWN (a cell that does not answer): not running yet.
	return drivers.ServerBooting
}

// bootPlan is what Boot does for one server: start it (it exists), or
// create it from volumes on networks.
type bootPlan struct {
	spec     drivers.BootSpec
	existing *servers.Server
	flavorID string
	volumes  []string // ids, the boot volume first
	nics     []nicPlan
}

// nicPlan is one network of a server to create: a port that keeps the
// production server's address, or an address Neutron picks.
type nicPlan struct {
	network, networkID string
	ip, subnetID       string // the kept address, if any
}

// production is what the production server tells the boot of its DR twin.
type production struct {
	site, flavor string
	ips          []string
	// why says what could not be read, for errors that need it.
	why []string
}

// Boot creates and starts the servers at the site from their volumes, on
// their networks, and returns once Nova builds them (Health tells when
// they run). It is idempotent by server name: a server of that name at
// the site is not created again (one SHUTOFF is started, as on a
// failback). Everything is looked up before anything is made, so a wrong
// name or a missing volume changes nothing.
//
// A new server gets the production server's flavor (by name; the site's
// configured flavor when the production site cannot be read) and, on each
// network whose subnets hold one of the production server's fixed IPs, a
// port with that address (made first, then given to Nova): "remap
// addresses" keeps the servers' addresses across the failover.
func (a *Adapter) Boot(ctx context.Context, key, site string, specs []drivers.BootSpec) error {
	const op = "compute.boot"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		seen := map[string]bool{}
		for _, sp := range specs {
			if sp.Name == "" || seen[sp.Name] {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "server names must be set and unique (%q)", sp.Name)
			}
			seen[sp.Name] = true
		}
		sc, v, err := a.nova(ctx, op, site)
		if err != nil {
			return struct{}{}, err
		}
		plans := make([]*bootPlan, 0, len(specs))
		for _, sp := range specs {
			p, err := a.planBoot(ctx, op, sc, site, sp)
			if err != nil {
				return struct{}{}, err
			}
			plans = append(plans, p)
		}
		for _, p := range plans {
			if err := a.boot(ctx, op, sc, v, site, p); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

func (a *Adapter) planBoot(ctx context.Context, op string, sc *gophercloud.ServiceClient, site string, sp drivers.BootSpec) (*bootPlan, error) {
	p := &bootPlan{spec: sp}
	s, err := a.serverNamed(ctx, op, sc, site, sp.Name)
	if err != nil {
		return nil, err
	}
	if s != nil {
		if err := startable(op, site, s); err != nil {
			return nil, err
		}
		p.existing = s
		return p, nil
	}
	if len(sp.Volumes) == 0 {
		return nil, drivers.Errorf(drivers.Permanent, op, "server %s: no volumes: Ferry boots DR servers from their replicated volumes", sp.Name)
	}
	if p.volumes, err = a.bootVolumeIDs(ctx, op, site, sp.Volumes); err != nil {
		return nil, err
	}
	prod, err := a.productionOf(ctx, op, site, sp.Name)
	if err != nil {
		return nil, err
	}
	if p.flavorID, err = a.bootFlavor(ctx, op, sc, site, sp.Name, prod); err != nil {
		return nil, err
	}
	if len(sp.Networks) > 0 {
		nc, err := a.neutron(ctx, op, site)
		if err != nil {
			return nil, err
		}
		kept := map[string]bool{}
		for _, ref := range sp.Networks {
			n, err := a.networkRef(ctx, op, nc, site, ref)
			if err != nil {
				return nil, err
			}
			nic := nicPlan{network: n.Name, networkID: n.ID}
			subs, err := a.subnetsOf(ctx, nc, site, n.ID)
			if err != nil {
				return nil, err
			}
		keep:
			for _, ip := range prod.ips {
				addr, err := netip.ParseAddr(ip)
				if err != nil || kept[ip] {
					continue
				}
				for _, sub := range subs {
					if pfx, err := netip.ParsePrefix(sub.CIDR); err == nil && pfx.Contains(addr) {
						nic.ip, nic.subnetID = ip, sub.ID
						kept[ip] = true
						break keep
					}
				}
			}
			p.nics = append(p.nics, nic)
		}
	}
	return p, nil
}

// boot carries out one plan: it starts an existing SHUTOFF server, or
// makes the kept-address ports and creates the server.
func (a *Adapter) boot(ctx context.Context, op string, sc *gophercloud.ServiceClient, v mv, site string, p *bootPlan) error {
	if p.existing != nil {
		if p.existing.Status != novaShutoff {
			return nil
		}
		return a.serverAction(ctx, op, sc, site, p.existing, "os-start", novaActive, "powering-on")
	}
	var nets []servers.Network
	for _, nic := range p.nics {
		if nic.ip == "" {
			nets = append(nets, servers.Network{UUID: nic.networkID})
			continue
		}
		port, err := a.keepAddress(ctx, op, site, p.spec.Name, nic)
		if err != nil {
			return err
		}
		nets = append(nets, servers.Network{Port: port})
	}
	bdm := make([]servers.BlockDevice, len(p.volumes))
	for i, id := range p.volumes {
		// boot_index 0 is the boot volume; -1 attaches the others.
		idx := -1
		if i == 0 {
			idx = 0
		}
		bdm[i] = servers.BlockDevice{SourceType: servers.SourceVolume, DestinationType: servers.DestinationVolume, UUID: id, BootIndex: idx}
	}
	opts := servers.CreateOpts{Name: p.spec.Name, FlavorRef: p.flavorID, BlockDevice: bdm}
	switch {
	case len(nets) > 0:
		opts.Networks = nets
	case !v.less(mvNovaNetworks):
		opts.Networks = "none"
	}
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	if _, err := servers.Create(rctx, sc, opts, nil).Extract(); err != nil {
		return fmt.Errorf("site %s: create server %s: %w", site, p.spec.Name, err)
	}
	return nil
}

// keepAddress makes (or finds, after an attempt that failed later) the
// port that gives the server its production address on a DR network.
func (a *Adapter) keepAddress(ctx context.Context, op, site, server string, nic nicPlan) (string, error) {
	nc, err := a.neutron(ctx, op, site)
	if err != nil {
		return "", err
	}
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := ports.List(nc, ports.ListOpts{NetworkID: nic.networkID, FixedIPs: []ports.FixedIPOpts{{IPAddress: nic.ip}}}).AllPages(rctx)
	if err != nil {
		return "", fmt.Errorf("site %s: find ports with %s on %s: %w", site, nic.ip, nic.network, err)
	}
	have, err := ports.ExtractPorts(pages)
	if err != nil {
		return "", err
	}
	for _, pt := range have {
		if pt.DeviceID == "" {
			return pt.ID, nil
		}
		return "", drivers.Errorf(drivers.Permanent, op, "server %s cannot keep its address %s on network %s at site %s: port %s has it, bound to device %s", server, nic.ip, nic.network, site, pt.ID, pt.DeviceID)
	}
	pt, err := ports.Create(rctx, nc, ports.CreateOpts{NetworkID: nic.networkID, Name: "ferry-" + server,
		Description: "Ferry: " + server + "'s production address", FixedIPs: []ports.IP{{SubnetID: nic.subnetID, IPAddress: nic.ip}}}).Extract()
	if err != nil {
		return "", fmt.Errorf("site %s: create a port with %s on %s for %s: %w", site, nic.ip, nic.network, server, err)
	}
	return pt.ID, nil
}

// bootVolumeIDs finds the volumes' ids in the site's Cinder: each name
// must be one volume there, available. Only this site is asked: in an
// unplanned failover the others may be gone.
func (a *Adapter) bootVolumeIDs(ctx context.Context, op, site string, names []string) ([]string, error) {
	if a.cfg.bootVolumes != nil {
		return a.cfg.bootVolumes(ctx, site, names)
	}
	if why := a.noCinder(site); why != "" {
		return nil, drivers.Errorf(drivers.Permanent, op, "booting at site %s needs the volumes' ids from that site's Cinder, and %s", site, why)
	}
	s, err := a.site(ctx, op, site)
	if err != nil {
		kind := drivers.Kind(err)
		var noEndpoint *gophercloud.ErrEndpointNotFound
		if errors.As(err, &noEndpoint) {
			kind = drivers.Permanent // the catalog has no Cinder: no retry helps
		}
		return nil, &drivers.Error{Kind: kind, Op: op, Err: fmt.Errorf("booting at site %s needs the volumes' ids from that site's Cinder: %w", site, err)}
	}
	vols, err := a.siteVolumes(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("site %s: list Cinder's volumes: %w", site, err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		var match []string
		status := ""
		for _, v := range vols {
			if v.Name == n || v.ID == n {
				match = append(match, v.ID)
				status = v.Status
			}
		}
		switch {
		case len(match) == 0:
			return nil, drivers.Errorf(drivers.Permanent, op, "volume %s is not in Cinder at site %s", n, site)
		case len(match) > 1:
			return nil, drivers.Errorf(drivers.Permanent, op, "site %s has %d volumes named %s (%s): Ferry cannot tell which one to boot from", site, len(match), n, strings.Join(match, ", "))
		case status != "available":
			return nil, drivers.Errorf(drivers.Permanent, op, "volume %s at site %s is %s, not available: Nova cannot boot a server from it", n, site, status)
		}
		out = append(out, match[0])
	}
	return out, nil
}

// noCinder says why a site has no Cinder to ask, when its configuration
// shows it: a noauth cloud without block_storage_endpoint_override.
func (a *Adapter) noCinder(site string) string {
	cfg, ok := a.cfg.Sites[site]
	if !ok {
		return ""
	}
	ex, err := readExtras(a.clouds, cfg.Cloud)
	if err != nil {
		return ""
	}
	switch strings.ToLower(ex.AuthType) {
	case "none", "noauth":
		if ex.BlockStorageEndpointOverride == "" {
			return fmt.Sprintf("cloud %s of clouds.yaml has auth_type %s and no block_storage_endpoint_override: no Cinder is configured there", cfg.Cloud, ex.AuthType)
		}
	}
	return ""
}

// productionOf reads the server of the same name at the other sites: its
// flavor and fixed IPs. A site that does not answer is skipped and noted:
// in an unplanned failover the production site is gone, and the DR server
// then gets the configured flavor and addresses Neutron picks.
func (a *Adapter) productionOf(ctx context.Context, op, site, name string) (production, error) {
	var p production
	for _, other := range a.otherSites(site) {
		sc, v, err := a.nova(ctx, op, other)
		if err == nil {
			var s *servers.Server
			if s, err = a.serverNamed(ctx, op, sc, other, name); err == nil {
				if s == nil {
					continue
				}
				p.site = other
				p.flavor, err = a.flavorName(ctx, sc, v, s)
				if err == nil {
					p.ips, err = a.fixedIPs(ctx, op, other, s.ID)
				}
				if err != nil {
					p.why = append(p.why, fmt.Sprintf("site %s: %v", other, err))
				}
				return p, nil
			}
		}
		if drivers.IsPermanent(err) {
			return p, err
		}
		p.why = append(p.why, fmt.Sprintf("site %s: %v", other, err))
	}
	return p, nil
}

// otherSites are the configured sites but one, sorted.
func (a *Adapter) otherSites(site string) []string {
	var out []string
	for s := range a.cfg.Sites {
		if s != site {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// flavorName is a server's flavor name: embedded from 2.47, else read by
// the flavor's id.
func (a *Adapter) flavorName(ctx context.Context, sc *gophercloud.ServiceClient, v mv, s *servers.Server) (string, error) {
	if !v.less(mvNovaFlavor) {
		if n, ok := s.Flavor["original_name"].(string); ok && n != "" {
			return n, nil
		}
	}
	id, _ := s.Flavor["id"].(string)
	if id == "" {
		return "", fmt.Errorf("server %s shows no flavor", s.Name)
	}
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	fl, err := flavors.Get(rctx, sc, id).Extract()
	if err != nil {
		return "", fmt.Errorf("read flavor %s of server %s: %w", id, s.Name, err)
	}
	return fl.Name, nil
}

// fixedIPs are the addresses of a server's ports at a site.
func (a *Adapter) fixedIPs(ctx context.Context, op, site, serverID string) ([]string, error) {
	nc, err := a.neutron(ctx, op, site)
	if err != nil {
		return nil, err
	}
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := ports.List(nc, ports.ListOpts{DeviceID: serverID}).AllPages(rctx)
	if err != nil {
		return nil, fmt.Errorf("list the ports of server %s: %w", serverID, err)
	}
	list, err := ports.ExtractPorts(pages)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pt := range list {
		for _, ip := range pt.FixedIPs {
			out = append(out, ip.IPAddress)
		}
	}
	return out, nil
}

// bootFlavor is the flavor id at the site: the production server's flavor
// by name, else the site's configured flavor (name or id).
func (a *Adapter) bootFlavor(ctx context.Context, op string, sc *gophercloud.ServiceClient, site, server string, prod production) (string, error) {
	want, from := prod.flavor, "the flavor of production server "+server+" at site "+prod.site
	if want == "" {
		want, from = a.cfg.Sites[site].Flavor, "sites."+site+".flavor"
	}
	if want == "" {
		why := "no other site has a server named " + server
		if len(prod.why) > 0 {
			why = strings.Join(prod.why, "; ")
		}
		return "", drivers.Errorf(drivers.Permanent, op, "cannot tell which flavor to boot %s with at site %s: the production server's flavor could not be read (%s) and sites.%s.flavor is not set", server, site, why, site)
	}
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := flavors.ListDetail(sc, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(rctx)
	if err != nil {
		return "", fmt.Errorf("site %s: list flavors: %w", site, err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return "", err
	}
	for _, fl := range all {
		if fl.ID == want || fl.Name == want {
			return fl.ID, nil
		}
	}
	return "", drivers.Errorf(drivers.Permanent, op, "flavor %q (%s) does not exist at site %s", want, from, site)
}

// networkRef finds a network at the site by name, or else by id.
func (a *Adapter) networkRef(ctx context.Context, op string, nc *gophercloud.ServiceClient, site, ref string) (*networks.Network, error) {
	n, err := a.networkNamed(ctx, op, nc, site, ref)
	if err != nil || n != nil {
		return n, err
	}
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	got, err := networks.Get(rctx, nc, ref).Extract()
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		return nil, drivers.Errorf(drivers.Permanent, op, "network %s does not exist at site %s (MapNetworks makes the DR networks)", ref, site)
	case err != nil:
		return nil, fmt.Errorf("site %s: read network %s: %w", site, ref, err)
	}
	return got, nil
}
