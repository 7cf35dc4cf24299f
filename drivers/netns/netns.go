// Package netns is the network port (drivers.Network) on Linux network
// namespaces, for drills on one machine: a site is a named namespace (or the
// host's own, for production), a network is a Linux bridge inside it with
// the production network's address, and a test bubble is a fresh namespace
// with no link out of it, so nothing inside can reach production and
// nothing outside can reach in. Helpers run commands inside a bubble
// (RunIn, Command), link namespaces (Link) and cut links with nftables
// (Partition, Heal) for fault injection.
//
// It drives iproute2 (ip) and nftables (nft), and needs root.
package netns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.Network = (*Adapter)(nil)

// Names of what the adapter makes. A network's bridge is named from a hash
// of the network's name (interface names hold 15 bytes) and carries the
// name in its alias, so it can be found again and told from others' links.
const (
	DefaultBubblePrefix = "ferry-bubble-"
	DefaultBubbleAddr   = "10.255.255.1/24"
	// BubbleLink is the bridge every bubble gets for its own servers.
	BubbleLink = "bubble0"

	networkAlias = "ferry-network:"
	maxAlias     = 255 // IFALIASZ less its NUL
	bubbleAlias  = "ferry-bubble:"
)

// Config says where each site lives and how each network is addressed.
type Config struct {
	// StateDir holds the idempotency ledger.
	StateDir string
	// Sites maps a site name to its namespace; "" is the host's own
	// namespace (production on a real machine).
	Sites map[string]string
	// Networks maps a network name to its address on the site, as a CIDR
	// ("10.10.1.1/24"). A DR network without an entry takes the address of
	// the production network it maps from, as a DR twin does.
	Networks map[string]string
	// BubblePrefix names bubble namespaces (DefaultBubblePrefix); tests set
	// their own so that they can clean up after themselves.
	BubblePrefix string
	// BubbleAddr is the address of BubbleLink inside every bubble
	// (DefaultBubbleAddr).
	BubbleAddr string
}

// Adapter is the network port on network namespaces.
type Adapter struct {
	cfg    Config
	ledger *ledger
}

// New checks the configuration and the tools and opens the ledger.
func New(cfg Config) (*Adapter, error) {
	const op = "network.new"
	if cfg.StateDir == "" {
		return nil, perm(op, "a state dir is required")
	}
	if cfg.BubblePrefix == "" {
		cfg.BubblePrefix = DefaultBubblePrefix
	}
	if cfg.BubbleAddr == "" {
		cfg.BubbleAddr = DefaultBubbleAddr
	}
	if err := validNS(op, cfg.BubblePrefix+"x"); err != nil {
		return nil, err
	}
	if _, err := netip.ParsePrefix(cfg.BubbleAddr); err != nil {
		return nil, perm(op, "bubble address: %v", err)
	}
	for n, addr := range cfg.Networks {
		if _, err := netip.ParsePrefix(addr); err != nil {
			return nil, perm(op, "network %q: %v", n, err)
		}
	}
	for s, ns := range cfg.Sites {
		if ns == "" {
			continue
		}
		if err := validNS(op, ns); err != nil {
			return nil, err
		}
		if strings.HasPrefix(ns, cfg.BubblePrefix) {
			return nil, perm(op, "site %q: namespace %q has the bubble prefix", s, ns)
		}
	}
	if err := RequireTools(); err != nil {
		return nil, err
	}
	l, err := newLedger(cfg.StateDir)
	if err != nil {
		return nil, perm(op, "state dir: %v", err)
	}
	return &Adapter{cfg: cfg, ledger: l}, nil
}

// siteNS returns the site's namespace: Permanent for a site the adapter does
// not know, Unreachable when its namespace is gone (the site is down).
func (a *Adapter) siteNS(op, site string) (string, error) {
	ns, ok := a.cfg.Sites[site]
	if !ok {
		return "", perm(op, "unknown site %q", site)
	}
	if !Exists(ns) {
		return "", unreachable(op, "site %s: namespace %s does not exist", site, ns)
	}
	return ns, nil
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// NetworkLink is the bridge name of a network inside a namespace.
func NetworkLink(network string) string { return "fn" + hash(network)[:10] }

// BubbleID is the namespace CreateBubble makes for an idempotency key: a
// replay finds what the first call created.
func (a *Adapter) BubbleID(key string) string { return a.cfg.BubblePrefix + hash(key)[:12] }

// Bubbles lists the bubble namespaces that exist now.
func (a *Adapter) Bubbles() ([]string, error) {
	all, err := Namespaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range all {
		if strings.HasPrefix(ns, a.cfg.BubblePrefix) {
			out = append(out, ns)
		}
	}
	return out, nil
}

// address is the CIDR a mapping's DR network gets.
func (a *Adapter) address(m drivers.NetworkMapping) (string, bool) {
	if addr, ok := a.cfg.Networks[m.To]; ok {
		return addr, true
	}
	addr, ok := a.cfg.Networks[m.From]
	return addr, ok
}

// MapNetworks makes sure each mapping's DR network exists at the site: a
// bridge with the production network's address. What exists is kept, so it
// is idempotent even without the ledger.
func (a *Adapter) MapNetworks(ctx context.Context, key, site string, mappings []drivers.NetworkMapping) error {
	const op = "network.map_networks"
	type want struct{ name, addr string }
	var wants []want
	for _, m := range mappings {
		if m.To == "" {
			return perm(op, "mapping of %q has no target network", m.From)
		}
		addr, ok := a.address(m)
		if !ok {
			return perm(op, "no address for network %q (nor for %q it maps from)", m.To, m.From)
		}
		if len(networkAlias+m.To) > maxAlias {
			return perm(op, "network name %q is too long", m.To)
		}
		wants = append(wants, want{m.To, addr})
	}
	if _, ok := a.cfg.Sites[site]; !ok {
		return perm(op, "unknown site %q", site)
	}
	_, err := a.ledger.do(ctx, op, key, site, func() (string, error) {
		ns, err := a.siteNS(op, site)
		if err != nil {
			return "", err
		}
		have, err := linksByName(ctx, op, ns)
		if err != nil {
			return "", err
		}
		for _, w := range wants {
			if err := ensureBridge(ctx, op, ns, NetworkLink(w.name), networkAlias+w.name, []string{w.addr}, have); err != nil {
				return "", err
			}
		}
		return "", nil
	})
	return err
}

// CreateBubble makes a fresh namespace named from the key, with its
// loopback, BubbleLink for the bubble's own servers and a copy of every
// network mapped at the site (same name, same addresses) so that clones keep
// their production addresses. No link leaves the namespace and it has no
// default route: production is unreachable from inside, and the bubble from
// outside. Returns the bubble's id, its namespace.
func (a *Adapter) CreateBubble(ctx context.Context, key, site, name string) (string, error) {
	const op = "network.create_bubble"
	if _, ok := a.cfg.Sites[site]; !ok {
		return "", perm(op, "unknown site %q", site)
	}
	if len(bubbleAliasFor(site, name)) > maxAlias {
		return "", perm(op, "bubble name %q is too long", name)
	}
	return a.ledger.do(ctx, op, key, site, func() (string, error) {
		siteNS, err := a.siteNS(op, site)
		if err != nil {
			return "", err
		}
		siteLinks, err := links(ctx, op, siteNS)
		if err != nil {
			return "", err
		}
		id := a.BubbleID(key)
		existed := Exists(id)
		if err := a.buildBubble(ctx, op, id, site, name, siteLinks); err != nil {
			if !existed {
				// Leave nothing half built; a retry starts over.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_ = DeleteNamespace(cctx, id)
			}
			return "", err
		}
		return id, nil
	})
}

func (a *Adapter) buildBubble(ctx context.Context, op, id, site, name string, siteLinks []link) error {
	if Exists(id) {
		if s, _, err := bubbleSite(ctx, op, id); err == nil && s != site {
			return perm(op, "bubble %s exists at site %q, not %q", id, s, site)
		}
	}
	if err := AddNamespace(ctx, id); err != nil {
		return err
	}
	have, err := linksByName(ctx, op, id)
	if err != nil {
		return err
	}
	for _, l := range siteLinks {
		if !strings.HasPrefix(l.Alias, networkAlias) || l.LinkInfo.Kind != "bridge" {
			continue
		}
		if err := ensureBridge(ctx, op, id, l.Name, l.Alias, l.globalAddrs(), have); err != nil {
			return err
		}
	}
	return ensureBridge(ctx, op, id, BubbleLink, bubbleAliasFor(site, name), []string{a.cfg.BubbleAddr}, have)
}

func bubbleAliasFor(site, name string) string {
	return bubbleAlias + url.Values{"site": {site}, "name": {name}}.Encode()
}

// bubbleSite reads the site and name a bubble was created for.
func bubbleSite(ctx context.Context, op, id string) (site, name string, err error) {
	ls, err := linksByName(ctx, op, id)
	if err != nil {
		return "", "", err
	}
	l, ok := ls[BubbleLink]
	if !ok || !strings.HasPrefix(l.Alias, bubbleAlias) {
		return "", "", perm(op, "%s is not a bubble", id)
	}
	v, err := url.ParseQuery(strings.TrimPrefix(l.Alias, bubbleAlias))
	if err != nil {
		return "", "", perm(op, "%s: bad bubble alias: %v", id, err)
	}
	return v.Get("site"), v.Get("name"), nil
}

// DestroyBubble stops every process inside the bubble (the servers and
// checks a drill ran there) and deletes its namespace; every link the
// bubble has lives inside it and goes with it, and so does the far end of a
// veth linked into it. A bubble that is gone is fine; one of another site is
// refused.
func (a *Adapter) DestroyBubble(ctx context.Context, key, site, id string) error {
	const op = "network.destroy_bubble"
	if !strings.HasPrefix(id, a.cfg.BubblePrefix) || validNS(op, id) != nil {
		// Never delete a namespace this adapter did not make (a site's).
		return perm(op, "%q is not a bubble id", id)
	}
	if _, ok := a.cfg.Sites[site]; !ok {
		return perm(op, "unknown site %q", site)
	}
	_, err := a.ledger.do(ctx, op, key, site, func() (string, error) {
		if !Exists(id) {
			return "", nil
		}
		if s, _, err := bubbleSite(ctx, op, id); err == nil && s != site {
			return "", perm(op, "bubble %s belongs to site %q, not %q", id, s, site)
		}
		if err := stopProcesses(ctx, op, id); err != nil {
			return "", err
		}
		// The kernel tears a deleted namespace down in the background: its
		// links (and the far ends of veths into it) linger for a moment.
		// Deleting them first makes them gone when this call returns.
		ls, err := links(ctx, op, id)
		if err != nil {
			return "", err
		}
		for _, l := range ls {
			if l.Name == "lo" {
				continue
			}
			if _, err := ip(ctx, op, id, "link", "del", "dev", l.Name); err != nil {
				if have, lerr := linksByName(ctx, op, id); lerr != nil || have[l.Name].Name != "" {
					return "", err
				}
			}
		}
		if err := DeleteNamespace(ctx, id); err != nil {
			return "", err
		}
		if Exists(id) {
			return "", retryable(op, "bubble %s still exists", id)
		}
		return "", nil
	})
	return err
}

// Network is one ferry network found in a namespace.
type Network struct {
	Name  string   `json:"name"`
	Link  string   `json:"link"`
	Addrs []string `json:"addrs"`
}

// Networks lists the ferry networks inside a namespace (a site's or a
// bubble's), sorted by name.
func Networks(ctx context.Context, ns string) ([]Network, error) {
	ls, err := links(ctx, "network.networks", ns)
	if err != nil {
		return nil, err
	}
	var out []Network
	for _, l := range ls {
		if strings.HasPrefix(l.Alias, networkAlias) {
			out = append(out, Network{Name: strings.TrimPrefix(l.Alias, networkAlias), Link: l.Name, Addrs: l.globalAddrs()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func linksByName(ctx context.Context, op, ns string) (map[string]link, error) {
	ls, err := links(ctx, op, ns)
	if err != nil {
		return nil, err
	}
	m := make(map[string]link, len(ls))
	for _, l := range ls {
		m[l.Name] = l
	}
	return m, nil
}

// ensureBridge makes a bridge with the alias and addresses, up. A link of
// that name with another alias is someone else's: refused, never touched.
func ensureBridge(ctx context.Context, op, ns, name, alias string, addrs []string, have map[string]link) error {
	if l, ok := have[name]; ok {
		if l.Alias != alias || l.LinkInfo.Kind != "bridge" {
			return perm(op, "link %s in %q exists and is not %q (alias %q, kind %q)", name, ns, alias, l.Alias, l.LinkInfo.Kind)
		}
	} else if _, err := ip(ctx, op, ns, "link", "add", "name", name, "type", "bridge"); err != nil {
		return err
	}
	if _, err := ip(ctx, op, ns, "link", "set", "dev", name, "alias", alias); err != nil {
		return err
	}
	for _, addr := range addrs {
		if _, err := ip(ctx, op, ns, "addr", "replace", addr, "dev", name); err != nil {
			return err
		}
	}
	_, err := ip(ctx, op, ns, "link", "set", "dev", name, "up")
	return err
}
