package openstack

// The network port on Neutron (network API v2.0): the DR networks a
// failover needs, with the production networks' addressing, and the
// isolated bubbles a drill runs in.
//
// A bubble is a network with a subnet and no router: nothing routes to or
// from it. Ferry tags its bubbles "ferry-bubble" (Neutron's
// standard-attr-tag extension) and DestroyBubble deletes only a network
// with that tag, so a wrong id can never take a production network down.

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.Network = (*Adapter)(nil)

const (
	// bubbleTag marks the networks Ferry made as test bubbles (the
	// simulator's facade knows it as NeutronBubbleTag).
	bubbleTag         = "ferry-bubble"
	bubbleDescription = "Ferry test bubble: isolated, no router"
	// bubbleCIDR addresses a bubble's subnet. It has no gateway: a guest
	// in the bubble gets no default route, and no router can be attached
	// by subnet.
	bubbleCIDR = "192.168.254.0/24"
)

// neutron returns a site's Neutron client.
func (a *Adapter) neutron(ctx context.Context, op, site string) (*gophercloud.ServiceClient, error) {
	c, err := a.client(ctx, op, site, svcNetwork)
	if err != nil {
		return nil, err
	}
	return c.sc, nil
}

// networkNamed finds the one network of a name at a site (nil if none).
// Neutron allows two of one name; Ferry finds networks by name, so that is
// an error here.
func (a *Adapter) networkNamed(ctx context.Context, op string, nc *gophercloud.ServiceClient, site, name string) (*networks.Network, error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := networks.List(nc, networks.ListOpts{Name: name}).AllPages(rctx)
	if err != nil {
		return nil, fmt.Errorf("site %s: list networks named %s: %w", site, name, err)
	}
	all, err := networks.ExtractNetworks(pages)
	if err != nil {
		return nil, fmt.Errorf("site %s: read networks named %s: %w", site, name, err)
	}
	var found []networks.Network
	for _, n := range all {
		if n.Name == name {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return &found[0], nil
	}
	return nil, drivers.Errorf(drivers.Permanent, op, "site %s has %d networks named %s; Ferry finds networks by name and cannot tell which one is meant", site, len(found), name)
}

func (a *Adapter) subnetsOf(ctx context.Context, nc *gophercloud.ServiceClient, site, networkID string) ([]subnets.Subnet, error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := subnets.List(nc, subnets.ListOpts{NetworkID: networkID}).AllPages(rctx)
	if err != nil {
		return nil, fmt.Errorf("site %s: list the subnets of network %s: %w", site, networkID, err)
	}
	return subnets.ExtractSubnets(pages)
}

func (a *Adapter) portsOf(ctx context.Context, nc *gophercloud.ServiceClient, site string, opts ports.ListOpts) ([]ports.Port, error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := ports.List(nc, opts).AllPages(rctx)
	if err != nil {
		return nil, fmt.Errorf("site %s: list ports: %w", site, err)
	}
	return ports.ExtractPorts(pages)
}

// MapNetworks makes sure each mapping's DR network (To) exists at the
// site with the addressing of its production network (From, found at the
// other sites): a subnet of the same CIDR and gateway for each of
// From's. A DR network that exists keeps its subnets; one whose subnet
// has the CIDR but another gateway, or overlaps differently, is an error,
// never a silent change. When no other site answers, a DR network that
// exists is taken as it is.
func (a *Adapter) MapNetworks(ctx context.Context, key, site string, mappings []drivers.NetworkMapping) error {
	const op = "network.map_networks"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		for i, m := range mappings {
			if m.From == "" || m.To == "" {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "mapping %d: from and to are required (%q -> %q)", i, m.From, m.To)
			}
		}
		nc, err := a.neutron(ctx, op, site)
		if err != nil {
			return struct{}{}, err
		}
		for _, m := range mappings {
			if err := a.mapNetwork(ctx, op, nc, site, m); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

func (a *Adapter) mapNetwork(ctx context.Context, op string, nc *gophercloud.ServiceClient, site string, m drivers.NetworkMapping) error {
	target, err := a.networkNamed(ctx, op, nc, site, m.To)
	if err != nil {
		return err
	}
	prodSite, prodSubs, why, err := a.productionSubnets(ctx, op, site, m.From)
	if err != nil {
		return err
	}
	if prodSite == "" {
		if target != nil {
			return nil
		}
		if len(why) > 0 {
			return drivers.Errorf(drivers.Unreachable, op, "network %s at site %s: cannot copy the addressing of production network %s: %s", m.To, site, m.From, strings.Join(why, "; "))
		}
		return drivers.Errorf(drivers.Permanent, op, "production network %s is not at any site but %s", m.From, site)
	}
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	if target == nil {
		target, err = networks.Create(rctx, nc, networks.CreateOpts{Name: m.To, Description: "Ferry DR network for " + m.From + " (site " + prodSite + ")"}).Extract()
		if err != nil {
			return fmt.Errorf("site %s: create network %s: %w", site, m.To, err)
		}
	}
	have, err := a.subnetsOf(ctx, nc, site, target.ID)
	if err != nil {
		return err
	}
	for _, ps := range prodSubs {
		want, err := netip.ParsePrefix(ps.CIDR)
		if err != nil {
			return drivers.Errorf(drivers.Permanent, op, "production subnet %s at site %s has cidr %q: %v", ps.ID, prodSite, ps.CIDR, err)
		}
		done := false
		for _, hs := range have {
			got, err := netip.ParsePrefix(hs.CIDR)
			if err != nil || !got.Overlaps(want) {
				continue
			}
			if got.Masked() != want.Masked() || hs.GatewayIP != ps.GatewayIP {
				return drivers.Errorf(drivers.Permanent, op, "network %s at site %s has subnet %s (%s, gateway %q) where production network %s at site %s has %s (gateway %q): Ferry does not change an existing DR subnet", m.To, site, hs.ID, hs.CIDR, hs.GatewayIP, m.From, prodSite, ps.CIDR, ps.GatewayIP)
			}
			done = true
		}
		if done {
			continue
		}
		dhcp := ps.EnableDHCP
		gw := ps.GatewayIP // "" is sent as null: no gateway, as production has
		opts := subnets.CreateOpts{NetworkID: target.ID, Name: ps.Name, Description: "Ferry: the addressing of " + m.From + " at site " + prodSite,
			CIDR: ps.CIDR, IPVersion: gophercloud.IPVersion(ps.IPVersion), GatewayIP: &gw, EnableDHCP: &dhcp,
			AllocationPools: ps.AllocationPools, DNSNameservers: ps.DNSNameservers, HostRoutes: ps.HostRoutes}
		if _, err := subnets.Create(rctx, nc, opts).Extract(); err != nil {
			return fmt.Errorf("site %s: create subnet %s on %s: %w", site, ps.CIDR, m.To, err)
		}
	}
	return nil
}

// productionSubnets finds the production network at the other sites and
// reads its subnets. Sites that do not answer are skipped and said in
// why; a site that answers but holds the name twice is an error.
func (a *Adapter) productionSubnets(ctx context.Context, op, site, name string) (prodSite string, subs []subnets.Subnet, why []string, err error) {
	for _, other := range a.otherSites(site) {
		nc, err := a.neutron(ctx, op, other)
		if err == nil {
			var n *networks.Network
			if n, err = a.networkNamed(ctx, op, nc, other, name); err == nil {
				if n == nil {
					continue
				}
				subs, err = a.subnetsOf(ctx, nc, other, n.ID)
				if err == nil {
					return other, subs, why, nil
				}
			}
		}
		if drivers.IsPermanent(err) {
			return "", nil, why, err
		}
		why = append(why, fmt.Sprintf("site %s: %v", other, err))
	}
	return "", nil, why, nil
}

// CreateBubble makes an isolated network at the site: a network tagged
// ferry-bubble, with one subnet without gateway, and no router. It returns
// the network's id. A network of that name that is already a Ferry bubble
// with nothing on it (an earlier attempt that failed half way) is taken
// over; any other network of that name is an error, since Boot finds
// networks by name.
func (a *Adapter) CreateBubble(ctx context.Context, key, site, name string) (string, error) {
	const op = "network.create_bubble"
	return mutate(ctx, a, op, key, func() (string, error) {
		if name == "" {
			return "", drivers.Errorf(drivers.Permanent, op, "a bubble needs a name")
		}
		nc, err := a.neutron(ctx, op, site)
		if err != nil {
			return "", err
		}
		if err := a.needTags(ctx, op, nc, site); err != nil {
			return "", err
		}
		n, err := a.networkNamed(ctx, op, nc, site, name)
		if err != nil {
			return "", err
		}
		rctx, cancel := a.withTimeout(ctx)
		defer cancel()
		if n != nil {
			if !contains(n.Tags, bubbleTag) && n.Description != bubbleDescription {
				return "", drivers.Errorf(drivers.Permanent, op, "a network named %s already exists at site %s (%s) and is not a Ferry bubble: pick another bubble name", name, site, n.ID)
			}
			on, err := a.portsOf(ctx, nc, site, ports.ListOpts{NetworkID: n.ID})
			if err != nil {
				return "", err
			}
			if len(on) > 0 {
				return "", drivers.Errorf(drivers.Permanent, op, "bubble %s (%s) already exists at site %s with %d ports on it: destroy it first (DestroyBubble)", name, n.ID, site, len(on))
			}
		} else if n, err = networks.Create(rctx, nc, networks.CreateOpts{Name: name, Description: bubbleDescription}).Extract(); err != nil {
			return "", fmt.Errorf("site %s: create bubble network %s: %w", site, name, err)
		}
		if !contains(n.Tags, bubbleTag) {
			if err := attributestags.Add(rctx, nc, "networks", n.ID, bubbleTag).ExtractErr(); err != nil {
				return "", fmt.Errorf("site %s: tag network %s %s: %w", site, n.ID, bubbleTag, err)
			}
		}
		subs, err := a.subnetsOf(ctx, nc, site, n.ID)
		if err != nil {
			return "", err
		}
		if len(subs) == 0 {
			none, dhcp := "", true
			_, err := subnets.Create(rctx, nc, subnets.CreateOpts{NetworkID: n.ID, Name: name, Description: bubbleDescription,
				CIDR: bubbleCIDR, IPVersion: gophercloud.IPv4, GatewayIP: &none, EnableDHCP: &dhcp}).Extract()
			if err != nil {
				return "", fmt.Errorf("site %s: create the subnet of bubble %s: %w", site, name, err)
			}
		}
		return n.ID, nil
	})
}

// needTags says whether the site's Neutron can tag networks.
func (a *Adapter) needTags(ctx context.Context, op string, nc *gophercloud.ServiceClient, site string) error {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	var last error
	for _, alias := range []string{"standard-attr-tag", "tag"} {
		_, err := extensions.Get(rctx, nc, alias).Extract()
		if err == nil {
			return nil
		}
		if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return fmt.Errorf("site %s: read Neutron's extension %s: %w", site, alias, err)
		}
		last = err
	}
	return drivers.Errorf(drivers.Permanent, op, "Neutron at site %s has neither the standard-attr-tag nor the tag extension (%v): Ferry tags its bubbles %s so that it never deletes a network it did not make", site, last, bubbleTag)
}

// DestroyBubble deletes a bubble and what lives in it: the servers whose
// only network it is (a drill's servers exist for the bubble alone), the
// ports, the subnets and the network. A bubble that is gone is done; a
// network without the ferry-bubble tag, or a server in the bubble that is
// also on other networks, is refused.
func (a *Adapter) DestroyBubble(ctx context.Context, key, site, id string) error {
	const op = "network.destroy_bubble"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		if id == "" {
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "a bubble id is required")
		}
		nc, err := a.neutron(ctx, op, site)
		if err != nil {
			return struct{}{}, err
		}
		rctx, cancel := a.withTimeout(ctx)
		n, err := networks.Get(rctx, nc, id).Extract()
		cancel()
		switch {
		case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
			return struct{}{}, nil
		case err != nil:
			return struct{}{}, fmt.Errorf("site %s: read network %s: %w", site, id, err)
		case !contains(n.Tags, bubbleTag):
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "network %s (%s) at site %s is not a Ferry bubble (no %s tag): Ferry deletes only the bubbles it made", n.Name, id, site, bubbleTag)
		}
		on, err := a.portsOf(ctx, nc, site, ports.ListOpts{NetworkID: id})
		if err != nil {
			return struct{}{}, err
		}
		if err := a.deleteBubbleServers(ctx, op, nc, site, n, on); err != nil {
			return struct{}{}, err
		}
		if on, err = a.portsOf(ctx, nc, site, ports.ListOpts{NetworkID: id}); err != nil {
			return struct{}{}, err
		}
		for _, pt := range on {
			if pt.DeviceOwner == "network:dhcp" {
				continue // Neutron removes its DHCP port with the network
			}
			if err := gone(ports.Delete(ctx, nc, pt.ID).ExtractErr()); err != nil {
				return struct{}{}, fmt.Errorf("site %s: delete port %s of bubble %s: %w", site, pt.ID, n.Name, err)
			}
		}
		subs, err := a.subnetsOf(ctx, nc, site, id)
		if err != nil {
			return struct{}{}, err
		}
		for _, s := range subs {
			if err := gone(subnets.Delete(ctx, nc, s.ID).ExtractErr()); err != nil {
				return struct{}{}, fmt.Errorf("site %s: delete subnet %s of bubble %s: %w", site, s.ID, n.Name, err)
			}
		}
		if err := gone(networks.Delete(ctx, nc, id).ExtractErr()); err != nil {
			return struct{}{}, fmt.Errorf("site %s: delete bubble network %s: %w", site, n.Name, err)
		}
		return struct{}{}, nil
	})
	return err
}

// gone treats a 404 of a delete as done.
func gone(err error) error {
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// deleteBubbleServers deletes the servers with a port on the bubble and
// waits until Nova has removed them. A server that also has a port on
// another network is not a drill's: that is refused before anything is
// deleted.
func (a *Adapter) deleteBubbleServers(ctx context.Context, op string, nc *gophercloud.ServiceClient, site string, bubble *networks.Network, on []ports.Port) error {
	var ids []string
	for _, pt := range on {
		if !strings.HasPrefix(pt.DeviceOwner, "compute:") || pt.DeviceID == "" || contains(ids, pt.DeviceID) {
			continue
		}
		theirs, err := a.portsOf(ctx, nc, site, ports.ListOpts{DeviceID: pt.DeviceID})
		if err != nil {
			return err
		}
		for _, tp := range theirs {
			if tp.NetworkID != bubble.ID {
				return drivers.Errorf(drivers.Permanent, op, "server %s is in bubble %s and also on network %s at site %s: Ferry deletes only servers that live in the bubble alone", pt.DeviceID, bubble.Name, tp.NetworkID, site)
			}
		}
		ids = append(ids, pt.DeviceID)
	}
	if len(ids) == 0 {
		return nil
	}
	sc, _, err := a.nova(ctx, op, site)
	if err != nil {
		return err
	}
	for _, id := range ids {
		rctx, cancel := a.withTimeout(ctx)
		err := gone(servers.Delete(rctx, sc, id).ExtractErr())
		cancel()
		if err != nil {
			return fmt.Errorf("site %s: delete server %s of bubble %s: %w", site, id, bubble.Name, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	for _, id := range ids {
		for {
			rctx, rcancel := a.withTimeout(wctx)
			_, err := servers.Get(rctx, sc, id).Extract()
			rcancel()
			if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				break
			}
			select {
			case <-wctx.Done():
				return drivers.Errorf(drivers.Retryable, op, "server %s of bubble %s at site %s is still there after %s", id, bubble.Name, site, a.cfg.SettleTimeout)
			case <-time.After(pollEvery):
			}
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
