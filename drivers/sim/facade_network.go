package sim

// Neutron's network API v2.0 on the simulator's model: networks (with
// tags), subnets and ports with fixed IPs.
//
// Networks are the Cloud's: the names it holds at a site (MapNetworks) and
// its bubbles there. A network tagged "ferry-bubble" is what the simulator
// calls a bubble (CreateBubble): isolated, no route to production; its
// servers go with it when it is deleted, as DestroyBubble does. Ferry's
// OpenStack adapter tags its bubbles so; on a real Neutron the tag is only
// a tag. A network's id is FacadeID("network", "<site>/<name>"): the
// simulator holds one network per name and site (Neutron allows more; the
// facade says so with a 409).
//
// Subnets and ports are the facade's own tables: the model has no
// addressing. Fixed IPs are allocated as Neutron does: the one asked for
// if it is in a subnet of the network and free, else the first free
// address of the subnet's allocation pools.

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// NeutronBubbleTag marks a Neutron network as a Ferry test bubble; the facade maps
// it to the simulator's bubbles.
const NeutronBubbleTag = "ferry-bubble"

// neutronNetMeta is what Neutron knows of a network and the model does not.
type neutronNetMeta struct {
	description string
	tags        []string // besides BubbleTag, which the model holds
	created     time.Time
}

type neutronSubnet struct {
	id, site, network, name, description string
	prefix                               netip.Prefix
	gateway                              string // "" when the subnet has none
	ipVersion                            int
	dhcp                                 bool
	pools                                []neutronPool
	dns                                  []string
	created                              time.Time
}

type neutronPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type neutronIP struct{ subnet, ip string }

type neutronPort struct {
	id, site, network, name, description string
	deviceID, deviceOwner, mac           string
	ips                                  []neutronIP
	// novaMade: Nova made the port for a server, and deletes it with it.
	novaMade bool
	created  time.Time
}

// neutronIPReq is one entry of a port's fixed_ips in a request.
type neutronIPReq struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// neutronErr is a refusal in Neutron's terms.
type neutronErr struct {
	status   int
	typ, msg string
}

func neutronNetworkID(site, name string) string { return FacadeID("network", site+"/"+name) }

// neutronNetSnap is a network as the model has it: a name at a site, and the
// simulator's bubbles of that name.
type neutronNetSnap struct {
	name    string
	bubbles []string
	plain   bool // in the site's networks (MapNetworks), not only a bubble
}

// neutronNetworksAt reads a site's networks; the caller holds c.mu.
func (c *Cloud) neutronNetworksAt(site string) map[string]*neutronNetSnap {
	out := map[string]*neutronNetSnap{}
	for n := range c.networks[site] {
		out[n] = &neutronNetSnap{name: n, plain: true}
	}
	for _, b := range c.bubbles {
		if b.site != site || b.name == "" {
			continue
		}
		s := out[b.name]
		if s == nil {
			s = &neutronNetSnap{name: b.name}
			out[b.name] = s
		}
		s.bubbles = append(s.bubbles, b.id)
	}
	for _, s := range out {
		sort.Strings(s.bubbles)
	}
	return out
}

// networks reads the site's networks for the facade's own checks.
func (f *cloudFacade) networks(site string) map[string]*neutronNetSnap {
	var out map[string]*neutronNetSnap
	f.peek(func() { out = f.c.neutronNetworksAt(site) })
	return out
}

// networkNames maps the site's network ids to names.
func (f *cloudFacade) networkNames(site string) map[string]string {
	out := map[string]string{}
	for n := range f.networks(site) {
		out[neutronNetworkID(site, n)] = n
	}
	return out
}

// readNetworks reads the site's networks as a GET does: faults of
// network.show apply.
func (f *cloudFacade) readNetworks(x *cfReq) (map[string]*neutronNetSnap, bool) {
	const op = "network.show"
	nets, err := query(x.ctx(), f.c, siteCall(op, "", x.site), func(time.Time) (map[string]*neutronNetSnap, error) {
		if err := f.c.siteReachable(op, x.site); err != nil {
			return nil, err
		}
		return f.c.neutronNetworksAt(x.site), nil
	})
	if err != nil {
		x.fail(err)
		return nil, false
	}
	return nets, true
}

func (f *cloudFacade) netMetaOf(site, name string) *neutronNetMeta {
	k := site + "/" + name
	m := f.netMeta[k]
	if m == nil {
		m = &neutronNetMeta{created: f.c.opts.Now().UTC()}
		f.netMeta[k] = m
	}
	return m
}

// prunePorts drops what a change of the model left behind in the facade's
// tables: subnets and ports of networks that are gone, and the ports of
// servers that are gone (Nova's own deleted, the caller's unbound).
func (f *cloudFacade) prunePorts(site string) {
	var nets map[string]*neutronNetSnap
	var servers map[string]novaServerSnap
	f.peek(func() {
		nets = f.c.neutronNetworksAt(site)
		servers = f.c.novaServersAt(site)
	})
	live := map[string]bool{}
	for n := range servers {
		live[novaServerID(site, n)] = true
	}
	for id, s := range f.subnets {
		if s.site == site && nets[s.network] == nil {
			delete(f.subnets, id)
		}
	}
	for id, p := range f.ports {
		if p.site != site {
			continue
		}
		if nets[p.network] == nil {
			delete(f.ports, id)
			continue
		}
		if strings.HasPrefix(p.deviceOwner, "compute:") && !live[p.deviceID] {
			f.releasePort(p)
		}
	}
}

// releasePorts frees a deleted server's ports, as Nova does.
func (f *cloudFacade) releasePorts(novaServerID string) {
	for _, p := range f.ports {
		if p.deviceID == novaServerID {
			f.releasePort(p)
		}
	}
}

func (f *cloudFacade) releasePort(p *neutronPort) {
	if p.novaMade {
		delete(f.ports, p.id)
		return
	}
	p.deviceID, p.deviceOwner = "", ""
}

func (f *cloudFacade) routeNetwork(mux *http.ServeMux) {
	const p = "/openstack/{site}/network/v2.0"
	f.serviceRoot(mux, cfNeutron, "network", func(x *cfReq) map[string]any {
		return cfVersions(map[string]any{"id": "v2.0", "status": "CURRENT", "links": cfLink(x.base() + "/v2.0/")})
	})
	f.handle(mux, cfNeutron, "GET "+p+"/{$}", func(x *cfReq) {
		var res []map[string]any
		for _, r := range []string{"network", "subnet", "port"} {
			res = append(res, map[string]any{"name": r, "collection": r + "s", "links": cfLink(x.base() + "/v2.0/" + r + "s")})
		}
		x.json(http.StatusOK, map[string]any{"resources": res})
	})
	f.handle(mux, cfNeutron, "GET "+p+"/extensions", f.listExtensions)
	f.handle(mux, cfNeutron, "GET "+p+"/extensions/{alias}", f.showExtension)
	f.handle(mux, cfNeutron, "GET "+p+"/networks", f.listNetworks)
	f.handle(mux, cfNeutron, "GET "+p+"/networks/{id}", f.showNetwork)
	f.handle(mux, cfNeutron, "POST "+p+"/networks", f.createNetwork)
	f.handle(mux, cfNeutron, "DELETE "+p+"/networks/{id}", f.deleteNetwork)
	f.handle(mux, cfNeutron, "GET "+p+"/networks/{id}/tags", f.listTags)
	f.handle(mux, cfNeutron, "PUT "+p+"/networks/{id}/tags", f.replaceTags)
	f.handle(mux, cfNeutron, "GET "+p+"/networks/{id}/tags/{tag}", f.confirmTag)
	f.handle(mux, cfNeutron, "PUT "+p+"/networks/{id}/tags/{tag}", f.addTag)
	f.handle(mux, cfNeutron, "DELETE "+p+"/networks/{id}/tags/{tag}", f.deleteTag)
	f.handle(mux, cfNeutron, "GET "+p+"/subnets", f.listSubnets)
	f.handle(mux, cfNeutron, "GET "+p+"/subnets/{id}", f.showSubnet)
	f.handle(mux, cfNeutron, "POST "+p+"/subnets", f.createSubnet)
	f.handle(mux, cfNeutron, "DELETE "+p+"/subnets/{id}", f.deleteSubnet)
	f.handle(mux, cfNeutron, "GET "+p+"/ports", f.listPorts)
	f.handle(mux, cfNeutron, "GET "+p+"/ports/{id}", f.showPort)
	f.handle(mux, cfNeutron, "POST "+p+"/ports", f.createPort)
	f.handle(mux, cfNeutron, "DELETE "+p+"/ports/{id}", f.deletePort)
}

// The extensions the facade has: tags on networks (standard-attr-tag)
// and the router:external attribute (always false: no network of the
// facade routes anywhere).
var neutronExtensions = []map[string]any{
	{"alias": "standard-attr-tag", "name": "Tag support for resources with standard attribute: network, subnet, port", "description": "Enables to set tag on resources with standard attribute.", "updated": "2017-01-01T00:00:00-00:00", "links": []any{}},
	{"alias": "external-net", "name": "Neutron external network", "description": "Adds external network attribute to network resource.", "updated": "2013-01-14T10:00:00-00:00", "links": []any{}},
}

func (f *cloudFacade) listExtensions(x *cfReq) {
	x.json(http.StatusOK, map[string]any{"extensions": neutronExtensions})
}

func (f *cloudFacade) showExtension(x *cfReq) {
	for _, e := range neutronExtensions {
		if e["alias"] == x.r.PathValue("alias") {
			x.json(http.StatusOK, map[string]any{"extension": e})
			return
		}
	}
	x.fault(http.StatusNotFound, "ExtensionNotFound", "Extension with alias %s does not exist", x.r.PathValue("alias"))
}

// --- networks ---------------------------------------------------------------

func (f *cloudFacade) networkTags(site string, n *neutronNetSnap) []string {
	tags := append([]string(nil), f.netMetaOf(site, n.name).tags...)
	if len(n.bubbles) > 0 {
		tags = append(tags, NeutronBubbleTag)
	}
	sort.Strings(tags)
	return tags
}

func (f *cloudFacade) subnetsOf(site, network string) []*neutronSubnet {
	var out []*neutronSubnet
	for _, s := range f.subnets {
		if s.site == site && s.network == network {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

func (f *cloudFacade) networkView(x *cfReq, n *neutronNetSnap) map[string]any {
	m := f.netMetaOf(x.site, n.name)
	subnets := []string{}
	for _, s := range f.subnetsOf(x.site, n.name) {
		subnets = append(subnets, s.id)
	}
	return map[string]any{
		"id": neutronNetworkID(x.site, n.name), "name": n.name, "description": m.description,
		"status": "ACTIVE", "admin_state_up": true, "shared": false, "router:external": false,
		"subnets": subnets, "tags": f.networkTags(x.site, n), "mtu": 1500,
		"project_id": x.project, "tenant_id": x.project, "availability_zone_hints": []string{},
		"created_at": cfStamp(m.created), "updated_at": cfStamp(m.created), "revision_number": 1,
	}
}

// findNetwork finds a network by id at the site; a miss answers 404.
func (f *cloudFacade) findNetwork(x *cfReq, nets map[string]*neutronNetSnap) (*neutronNetSnap, bool) {
	id := x.r.PathValue("id")
	for name, n := range nets {
		if neutronNetworkID(x.site, name) == id {
			return n, true
		}
	}
	x.fault(http.StatusNotFound, "NetworkNotFound", "Network %s could not be found.", id)
	return nil, false
}

func (f *cloudFacade) listNetworks(x *cfReq) {
	nets, ok := f.readNetworks(x)
	if !ok {
		return
	}
	q := x.r.URL.Query()
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []map[string]any{}
	for _, name := range names {
		n := nets[name]
		if v := q.Get("name"); v != "" && v != name {
			continue
		}
		if v := q.Get("id"); v != "" && v != neutronNetworkID(x.site, name) {
			continue
		}
		if q.Get("router:external") == "true" {
			continue
		}
		if v := q.Get("tags"); v != "" && !tagsAll(f.networkTags(x.site, n), strings.Split(v, ",")) {
			continue
		}
		if v := q.Get("tags-any"); v != "" && !tagsAny(f.networkTags(x.site, n), strings.Split(v, ",")) {
			continue
		}
		out = append(out, f.networkView(x, n))
	}
	x.json(http.StatusOK, map[string]any{"networks": out})
}

func tagsAll(have, want []string) bool {
	for _, w := range want {
		if !contains(have, w) {
			return false
		}
	}
	return true
}

func tagsAny(have, want []string) bool {
	for _, w := range want {
		if contains(have, w) {
			return true
		}
	}
	return false
}

func (f *cloudFacade) showNetwork(x *cfReq) {
	nets, ok := f.readNetworks(x)
	if !ok {
		return
	}
	if n, ok := f.findNetwork(x, nets); ok {
		x.json(http.StatusOK, map[string]any{"network": f.networkView(x, n)})
	}
}

// createNetwork makes a network of the model: a bubble (CreateBubble) when
// it is tagged ferry-bubble, else a site network (MapNetworks).
func (f *cloudFacade) createNetwork(x *cfReq) {
	var body struct {
		Network struct {
			Name        string   `json:"name"`
			Description string   `json:"description"`
			Tags        []string `json:"tags"`
		} `json:"network"`
	}
	if !x.decode(&body) {
		return
	}
	n := body.Network
	if n.Name == "" {
		x.fault(http.StatusBadRequest, "BadRequest", "the simulator's OpenStack-API facade needs a network name (the simulator keys networks by name)")
		return
	}
	if _, exists := f.networks(x.site)[n.Name]; exists {
		x.fault(http.StatusConflict, "Conflict", "the simulator holds one network per name and site: %s already exists at %s (a limit of the simulator's facade; Neutron allows duplicate names)", n.Name, x.site)
		return
	}
	var err error
	if contains(n.Tags, NeutronBubbleTag) {
		_, err = f.c.CreateBubble(x.ctx(), "", x.site, n.Name)
	} else {
		err = f.c.MapNetworks(x.ctx(), "", x.site, []drivers.NetworkMapping{{To: n.Name}})
	}
	if err != nil {
		x.fail(err)
		return
	}
	var tags []string
	for _, t := range n.Tags {
		if t != NeutronBubbleTag && !contains(tags, t) {
			tags = append(tags, t)
		}
	}
	f.netMeta[x.site+"/"+n.Name] = &neutronNetMeta{description: n.Description, tags: tags, created: x.now()}
	x.json(http.StatusCreated, map[string]any{"network": f.networkView(x, f.networks(x.site)[n.Name])})
}

// deleteNetwork deletes a network of the model, as Neutron: not while a
// port is on it; its subnets go with it. A bubble's servers go too
// (DestroyBubble).
func (f *cloudFacade) deleteNetwork(x *cfReq) {
	n, ok := f.findNetwork(x, f.networks(x.site))
	if !ok {
		return
	}
	for _, p := range f.ports {
		if p.site == x.site && p.network == n.name {
			x.fault(http.StatusConflict, "NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", neutronNetworkID(x.site, n.name))
			return
		}
	}
	for _, b := range n.bubbles {
		if err := f.c.DestroyBubble(x.ctx(), "", x.site, b); err != nil {
			x.fail(err)
			return
		}
	}
	if n.plain {
		const op = "network.delete_network"
		_, err := mutate(x.ctx(), f.c, siteCall(op, "", x.site, n.name), func(time.Time) (struct{}, error) {
			if err := f.c.siteReachable(op, x.site); err != nil {
				return struct{}{}, err
			}
			delete(f.c.networks[x.site], n.name)
			return struct{}{}, nil
		})
		if err != nil {
			x.fail(err)
			return
		}
	}
	for _, s := range f.subnetsOf(x.site, n.name) {
		delete(f.subnets, s.id)
	}
	delete(f.netMeta, x.site+"/"+n.name)
	x.noContent(http.StatusNoContent)
}

// --- tags -------------------------------------------------------------------

func (f *cloudFacade) listTags(x *cfReq) {
	if n, ok := f.findNetwork(x, f.networks(x.site)); ok {
		x.json(http.StatusOK, map[string]any{"tags": f.networkTags(x.site, n)})
	}
}

func (f *cloudFacade) confirmTag(x *cfReq) {
	n, ok := f.findNetwork(x, f.networks(x.site))
	if !ok {
		return
	}
	if !contains(f.networkTags(x.site, n), x.r.PathValue("tag")) {
		x.fault(http.StatusNotFound, "TagNotFound", "Tag %s could not be found for network %s.", x.r.PathValue("tag"), neutronNetworkID(x.site, n.name))
		return
	}
	x.noContent(http.StatusNoContent)
}

// setTags makes the network's tags want. Tagging a network ferry-bubble
// makes it a bubble of the model; the model cannot turn a bubble back.
func (f *cloudFacade) setTags(x *cfReq, n *neutronNetSnap, want []string) bool {
	bubble := len(n.bubbles) > 0
	switch {
	case contains(want, NeutronBubbleTag) && !bubble:
		if _, err := f.c.CreateBubble(x.ctx(), "", x.site, n.name); err != nil {
			x.fail(err)
			return false
		}
	case !contains(want, NeutronBubbleTag) && bubble:
		x.fault(http.StatusConflict, "Conflict", "the simulator's OpenStack-API facade cannot turn bubble %s back into a routed network: delete it instead", n.name)
		return false
	}
	m := f.netMetaOf(x.site, n.name)
	m.tags = nil
	for _, t := range want {
		if t != NeutronBubbleTag && !contains(m.tags, t) {
			m.tags = append(m.tags, t)
		}
	}
	return true
}

func (f *cloudFacade) addTag(x *cfReq) {
	n, ok := f.findNetwork(x, f.networks(x.site))
	if !ok {
		return
	}
	tags := append(f.networkTags(x.site, n), x.r.PathValue("tag"))
	if f.setTags(x, n, tags) {
		x.noContent(http.StatusCreated)
	}
}

func (f *cloudFacade) deleteTag(x *cfReq) {
	n, ok := f.findNetwork(x, f.networks(x.site))
	if !ok {
		return
	}
	tag := x.r.PathValue("tag")
	have := f.networkTags(x.site, n)
	if !contains(have, tag) {
		x.fault(http.StatusNotFound, "TagNotFound", "Tag %s could not be found for network %s.", tag, neutronNetworkID(x.site, n.name))
		return
	}
	var rest []string
	for _, t := range have {
		if t != tag {
			rest = append(rest, t)
		}
	}
	if f.setTags(x, n, rest) {
		x.noContent(http.StatusNoContent)
	}
}

func (f *cloudFacade) replaceTags(x *cfReq) {
	var body struct {
		Tags []string `json:"tags"`
	}
	if !x.decode(&body) {
		return
	}
	n, ok := f.findNetwork(x, f.networks(x.site))
	if !ok {
		return
	}
	if f.setTags(x, n, body.Tags) {
		x.json(http.StatusOK, map[string]any{"tags": f.networkTags(x.site, f.networks(x.site)[n.name])})
	}
}

// --- subnets ----------------------------------------------------------------

func neutronSubnetView(x *cfReq, s *neutronSubnet) map[string]any {
	var gw any
	if s.gateway != "" {
		gw = s.gateway
	}
	pools := append([]neutronPool{}, s.pools...)
	return map[string]any{
		"id": s.id, "name": s.name, "description": s.description, "network_id": neutronNetworkID(s.site, s.network),
		"cidr": s.prefix.String(), "gateway_ip": gw, "ip_version": s.ipVersion, "enable_dhcp": s.dhcp,
		"allocation_pools": pools, "dns_nameservers": append([]string{}, s.dns...), "host_routes": []any{},
		"project_id": x.project, "tenant_id": x.project, "tags": []string{}, "service_types": []string{},
		"created_at": cfStamp(s.created), "updated_at": cfStamp(s.created), "revision_number": 0,
	}
}

func (f *cloudFacade) listSubnets(x *cfReq) {
	if _, ok := f.readNetworks(x); !ok {
		return
	}
	q := x.r.URL.Query()
	var out []*neutronSubnet
	for _, s := range f.subnets {
		if s.site != x.site {
			continue
		}
		if v := q.Get("network_id"); v != "" && v != neutronNetworkID(s.site, s.network) {
			continue
		}
		if v := q.Get("name"); v != "" && v != s.name {
			continue
		}
		if v := q.Get("id"); v != "" && v != s.id {
			continue
		}
		if v := q.Get("cidr"); v != "" && v != s.prefix.String() {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	views := []map[string]any{}
	for _, s := range out {
		views = append(views, neutronSubnetView(x, s))
	}
	x.json(http.StatusOK, map[string]any{"subnets": views})
}

func (f *cloudFacade) findSubnet(x *cfReq) (*neutronSubnet, bool) {
	s, ok := f.subnets[x.r.PathValue("id")]
	if !ok || s.site != x.site {
		x.fault(http.StatusNotFound, "SubnetNotFound", "Subnet %s could not be found.", x.r.PathValue("id"))
		return nil, false
	}
	return s, true
}

func (f *cloudFacade) showSubnet(x *cfReq) {
	if _, ok := f.readNetworks(x); !ok {
		return
	}
	if s, ok := f.findSubnet(x); ok {
		x.json(http.StatusOK, map[string]any{"subnet": neutronSubnetView(x, s)})
	}
}

func (f *cloudFacade) createSubnet(x *cfReq) {
	var body struct {
		Subnet struct {
			NetworkID   string        `json:"network_id"`
			Name        string        `json:"name"`
			Description string        `json:"description"`
			CIDR        string        `json:"cidr"`
			IPVersion   int           `json:"ip_version"`
			GatewayIP   *string       `json:"gateway_ip"`
			EnableDHCP  *bool         `json:"enable_dhcp"`
			Pools       []neutronPool `json:"allocation_pools"`
			DNS         []string      `json:"dns_nameservers"`
		} `json:"subnet"`
	}
	// gateway_ip absent means "the first address", null means "none":
	// read it apart.
	raw := map[string]map[string]any{}
	data, ok := cfReadBody(x)
	if !ok || !cfUnmarshal(x, data, &body) || !cfUnmarshal(x, data, &raw) {
		return
	}
	_, gwGiven := raw["subnet"]["gateway_ip"]
	b := body.Subnet
	network, ok := f.networkNames(x.site)[b.NetworkID]
	if !ok {
		x.fault(http.StatusNotFound, "NetworkNotFound", "Network %s could not be found.", b.NetworkID)
		return
	}
	prefix, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		x.fault(http.StatusBadRequest, "BadRequest", "Invalid input for cidr. Reason: '%s' is not a valid IP subnet.", b.CIDR)
		return
	}
	prefix = prefix.Masked()
	version := 4
	if prefix.Addr().Is6() {
		version = 6
	}
	if b.IPVersion != 0 && b.IPVersion != version {
		x.fault(http.StatusBadRequest, "BadRequest", "Invalid input for operation: cidr %s is not IPv%d.", b.CIDR, b.IPVersion)
		return
	}
	for _, s := range f.subnetsOf(x.site, network) {
		if s.prefix.Overlaps(prefix) {
			x.fault(http.StatusBadRequest, "BadRequest", "Invalid input for operation: Requested subnet with cidr: %s for network: %s overlaps with another subnet.", prefix, b.NetworkID)
			return
		}
	}
	first, last := neutronHostRange(prefix)
	gateway := first.String()
	switch {
	case gwGiven && b.GatewayIP == nil:
		gateway = ""
	case gwGiven:
		gw, err := netip.ParseAddr(*b.GatewayIP)
		if err != nil || !prefix.Contains(gw) {
			x.fault(http.StatusBadRequest, "BadRequest", "Invalid input for operation: Gateway is not valid on subnet (%s is not in %s).", *b.GatewayIP, prefix)
			return
		}
		gateway = gw.String()
	}
	pools := b.Pools
	for _, p := range pools {
		s, err1 := netip.ParseAddr(p.Start)
		e, err2 := netip.ParseAddr(p.End)
		if err1 != nil || err2 != nil || !prefix.Contains(s) || !prefix.Contains(e) || e.Less(s) {
			x.fault(http.StatusBadRequest, "BadRequest", "Invalid input for operation: allocation pool %s-%s spans beyond the subnet cidr %s.", p.Start, p.End, prefix)
			return
		}
	}
	if len(pools) == 0 {
		// Neutron's default: the hosts of the cidr, without the gateway
		// at either end.
		start, end := first, last
		if gateway == start.String() {
			start = start.Next()
		}
		if gateway == end.String() {
			end = end.Prev()
		}
		pools = []neutronPool{{Start: start.String(), End: end.String()}}
	}
	dhcp := true
	if b.EnableDHCP != nil {
		dhcp = *b.EnableDHCP
	}
	s := &neutronSubnet{id: FacadeID("subnet", x.site+"/"+network+"/"+prefix.String()), site: x.site, network: network, name: b.Name,
		description: b.Description, prefix: prefix, gateway: gateway, ipVersion: version, dhcp: dhcp, pools: pools,
		dns: b.DNS, created: x.now()}
	f.subnets[s.id] = s
	x.json(http.StatusCreated, map[string]any{"subnet": neutronSubnetView(x, s)})
}

// neutronHostRange is the first and last host address of a prefix: the network
// address (and IPv4's broadcast) excluded.
func neutronHostRange(p netip.Prefix) (first, last netip.Addr) {
	a := p.Masked().Addr()
	b := a.AsSlice()
	for i := range b {
		bit := i * 8
		switch {
		case bit >= p.Bits():
			b[i] = 0xff
		case bit+8 > p.Bits():
			b[i] |= byte(0xff >> (p.Bits() - bit))
		}
	}
	last, _ = netip.AddrFromSlice(b)
	first = a.Next()
	if a.Is4() {
		last = last.Prev()
	}
	return first, last
}

func (f *cloudFacade) deleteSubnet(x *cfReq) {
	s, ok := f.findSubnet(x)
	if !ok {
		return
	}
	for _, p := range f.ports {
		for _, ip := range p.ips {
			if ip.subnet == s.id {
				x.fault(http.StatusConflict, "SubnetInUse", "Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", s.id)
				return
			}
		}
	}
	delete(f.subnets, s.id)
	x.noContent(http.StatusNoContent)
}

// --- ports ------------------------------------------------------------------

func neutronPortView(x *cfReq, p *neutronPort) map[string]any {
	ips := []map[string]string{}
	for _, ip := range p.ips {
		ips = append(ips, map[string]string{"subnet_id": ip.subnet, "ip_address": ip.ip})
	}
	status := "DOWN"
	if p.deviceID != "" {
		status = "ACTIVE"
	}
	return map[string]any{
		"id": p.id, "name": p.name, "description": p.description, "network_id": neutronNetworkID(p.site, p.network),
		"device_id": p.deviceID, "device_owner": p.deviceOwner, "mac_address": p.mac, "fixed_ips": ips,
		"status": status, "admin_state_up": true, "project_id": x.project, "tenant_id": x.project,
		"security_groups": []string{}, "allowed_address_pairs": []any{}, "tags": []string{},
		"binding:vnic_type": "normal", "created_at": cfStamp(p.created), "updated_at": cfStamp(p.created), "revision_number": 1,
	}
}

func (f *cloudFacade) listPorts(x *cfReq) {
	if _, ok := f.readNetworks(x); !ok {
		return
	}
	q := x.r.URL.Query()
	var out []*neutronPort
	for _, p := range f.ports {
		if p.site != x.site {
			continue
		}
		if v := q.Get("network_id"); v != "" && v != neutronNetworkID(p.site, p.network) {
			continue
		}
		if v, ok := q["device_id"]; ok && v[0] != p.deviceID {
			continue
		}
		if v := q.Get("device_owner"); v != "" && v != p.deviceOwner {
			continue
		}
		if v := q.Get("name"); v != "" && v != p.name {
			continue
		}
		if v := q.Get("id"); v != "" && v != p.id {
			continue
		}
		if !neutronPortMatches(p, q["fixed_ips"]) {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	views := []map[string]any{}
	for _, p := range out {
		views = append(views, neutronPortView(x, p))
	}
	x.json(http.StatusOK, map[string]any{"ports": views})
}

// neutronPortMatches applies Neutron's fixed_ips filters
// (ip_address=, subnet_id=, ip_address_substr=): every filter must match
// one of the port's addresses.
func neutronPortMatches(p *neutronPort, filters []string) bool {
	for _, flt := range filters {
		k, v, _ := strings.Cut(flt, "=")
		hit := false
		for _, ip := range p.ips {
			switch k {
			case "ip_address":
				hit = hit || ip.ip == v
			case "subnet_id":
				hit = hit || ip.subnet == v
			case "ip_address_substr":
				hit = hit || strings.Contains(ip.ip, v)
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func (f *cloudFacade) findPort(x *cfReq) (*neutronPort, bool) {
	p, ok := f.ports[x.r.PathValue("id")]
	if !ok || p.site != x.site {
		x.fault(http.StatusNotFound, "PortNotFound", "Port %s could not be found.", x.r.PathValue("id"))
		return nil, false
	}
	return p, true
}

func (f *cloudFacade) showPort(x *cfReq) {
	if _, ok := f.readNetworks(x); !ok {
		return
	}
	if p, ok := f.findPort(x); ok {
		x.json(http.StatusOK, map[string]any{"port": neutronPortView(x, p)})
	}
}

func (f *cloudFacade) createPort(x *cfReq) {
	var body struct {
		Port struct {
			NetworkID   string         `json:"network_id"`
			Name        string         `json:"name"`
			Description string         `json:"description"`
			FixedIPs    []neutronIPReq `json:"fixed_ips"`
			DeviceID    string         `json:"device_id"`
			DeviceOwner string         `json:"device_owner"`
		} `json:"port"`
	}
	if !x.decode(&body) {
		return
	}
	b := body.Port
	network, ok := f.networkNames(x.site)[b.NetworkID]
	if !ok {
		x.fault(http.StatusNotFound, "NetworkNotFound", "Network %s could not be found.", b.NetworkID)
		return
	}
	reqs := b.FixedIPs
	if reqs == nil {
		reqs = []neutronIPReq{{}}
	}
	ips, aerr := f.chooseIPs(x.site, network, reqs, nil)
	if aerr != nil {
		x.fault(aerr.status, aerr.typ, "%s", aerr.msg)
		return
	}
	p := f.addPort(x, network, b.Name, b.DeviceID, b.DeviceOwner, ips, false)
	p.description = b.Description
	x.json(http.StatusCreated, map[string]any{"port": neutronPortView(x, p)})
}

func (f *cloudFacade) deletePort(x *cfReq) {
	if p, ok := f.findPort(x); ok {
		delete(f.ports, p.id)
		x.noContent(http.StatusNoContent)
	}
}

func (f *cloudFacade) addPort(x *cfReq, network, name, deviceID, owner string, ips []neutronIP, novaMade bool) *neutronPort {
	f.portSeq++
	id := FacadeID("port", fmt.Sprintf("%s/%s/%d", x.site, network, f.portSeq))
	mac := "fa:16:3e:" + id[0:2] + ":" + id[2:4] + ":" + id[4:6]
	p := &neutronPort{id: id, site: x.site, network: network, name: name, deviceID: deviceID, deviceOwner: owner,
		mac: mac, ips: ips, novaMade: novaMade, created: x.now()}
	f.ports[id] = p
	return p
}

// usedIPs are the addresses taken on a network: its ports' and its
// subnets' gateways.
func (f *cloudFacade) usedIPs(site, network string) map[string]bool {
	used := map[string]bool{}
	for _, p := range f.ports {
		if p.site == site && p.network == network {
			for _, ip := range p.ips {
				used[ip.ip] = true
			}
		}
	}
	for _, s := range f.subnetsOf(site, network) {
		if s.gateway != "" {
			used[s.gateway] = true
		}
	}
	return used
}

// chooseIPs picks a port's addresses as Neutron does: an address asked for
// must lie in a subnet of the network and be free; a subnet asked for, or
// none, gets its first free pool address. taken holds addresses already
// promised in this request.
func (f *cloudFacade) chooseIPs(site, network string, reqs []neutronIPReq, taken map[string]bool) ([]neutronIP, *neutronErr) {
	subnets := f.subnetsOf(site, network)
	used := f.usedIPs(site, network)
	for ip := range taken {
		used[ip] = true
	}
	netID := neutronNetworkID(site, network)
	var out []neutronIP
	for _, q := range reqs {
		var sub *neutronSubnet
		for _, s := range subnets {
			if q.SubnetID != "" && s.id == q.SubnetID {
				sub = s
			}
		}
		if q.SubnetID != "" && sub == nil {
			return nil, &neutronErr{http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Invalid input for operation: Failed to create port on network %s, because fixed_ips included invalid subnet %s.", netID, q.SubnetID)}
		}
		if q.IPAddress != "" {
			addr, err := netip.ParseAddr(q.IPAddress)
			if err != nil {
				return nil, &neutronErr{http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Invalid input for operation: '%s' is not a valid IP address.", q.IPAddress)}
			}
			if sub == nil {
				for _, s := range subnets {
					if s.prefix.Contains(addr) {
						sub = s
					}
				}
			}
			if sub == nil || !sub.prefix.Contains(addr) {
				return nil, &neutronErr{http.StatusBadRequest, "InvalidIpForNetwork", fmt.Sprintf("IP address %s is not a valid IP for any of the subnets on the specified network.", q.IPAddress)}
			}
			if used[addr.String()] {
				return nil, &neutronErr{http.StatusConflict, "IpAddressAlreadyAllocated", fmt.Sprintf("IP address %s already allocated in subnet %s", addr, sub.id)}
			}
			used[addr.String()] = true
			out = append(out, neutronIP{subnet: sub.id, ip: addr.String()})
			continue
		}
		if sub == nil {
			if len(subnets) == 0 {
				continue // a network without subnets gives a port no address
			}
			sub = subnets[0]
		}
		ip, ok := neutronFreeIP(sub, used)
		if !ok {
			return nil, &neutronErr{http.StatusConflict, "IpAddressGenerationFailure", fmt.Sprintf("No more IP addresses available on network %s.", netID)}
		}
		used[ip] = true
		out = append(out, neutronIP{subnet: sub.id, ip: ip})
	}
	return out, nil
}

func neutronFreeIP(s *neutronSubnet, used map[string]bool) (string, bool) {
	for _, p := range s.pools {
		start, _ := netip.ParseAddr(p.Start)
		end, _ := netip.ParseAddr(p.End)
		for a := start; a.IsValid() && !end.Less(a); a = a.Next() {
			if !used[a.String()] {
				return a.String(), true
			}
		}
	}
	return "", false
}

// addresses is a server's "addresses" as Nova shows them: its ports'
// fixed IPs by network name.
func (f *cloudFacade) addresses(site, novaServerID string) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	var ports []*neutronPort
	for _, p := range f.ports {
		if p.site == site && p.deviceID == novaServerID {
			ports = append(ports, p)
		}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].id < ports[j].id })
	for _, p := range ports {
		for _, ip := range p.ips {
			v := 4
			if a, err := netip.ParseAddr(ip.ip); err == nil && a.Is6() {
				v = 6
			}
			out[p.network] = append(out[p.network], map[string]any{"version": v, "addr": ip.ip, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": p.mac})
		}
	}
	return out
}
