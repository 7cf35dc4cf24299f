package netns

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Link connects namespaces a and b ("" is the host) with a veth pair, each
// end with its address (CIDR) and up: a wire between two sites of a test
// cloud. An existing link is kept. Deleting either namespace deletes both
// ends.
func Link(ctx context.Context, a, b, addrA, addrB string) error {
	const op = "network.link"
	if a == b {
		return perm(op, "cannot link %q to itself", a)
	}
	for _, ns := range []string{a, b} {
		if ns == "" {
			continue
		}
		if err := validNS(op, ns); err != nil {
			return err
		}
		if !Exists(ns) {
			return perm(op, "no namespace %q", ns)
		}
	}
	for _, addr := range []string{addrA, addrB} {
		if _, err := netip.ParsePrefix(addr); err != nil {
			return perm(op, "address %q: %v", addr, err)
		}
	}
	ea, eb := linkNames(a, b)
	have, err := linksByName(ctx, op, a)
	if err != nil {
		return err
	}
	if _, ok := have[ea]; !ok {
		peer := []string{"link", "add", "name", ea, "type", "veth", "peer", "name", eb}
		if b != "" {
			peer = append(peer, "netns", b)
		} else {
			peer = append(peer, "netns", "1") // the host's namespace: pid 1's
		}
		if _, err := ip(ctx, op, a, peer...); err != nil {
			return err
		}
	}
	for _, end := range []struct{ ns, name, addr string }{{a, ea, addrA}, {b, eb, addrB}} {
		if _, err := ip(ctx, op, end.ns, "addr", "replace", end.addr, "dev", end.name); err != nil {
			return err
		}
		if _, err := ip(ctx, op, end.ns, "link", "set", "dev", end.name, "up"); err != nil {
			return err
		}
	}
	return nil
}

// Unlink removes the veth pair Link made; a missing one is fine.
func Unlink(ctx context.Context, a, b string) error {
	const op = "network.unlink"
	if !Exists(a) {
		return nil
	}
	ea, _ := linkNames(a, b)
	have, err := linksByName(ctx, op, a)
	if err != nil {
		return err
	}
	if _, ok := have[ea]; !ok {
		return nil
	}
	_, err = ip(ctx, op, a, "link", "del", "dev", ea)
	return err
}

// linkNames names the two ends of a's link to b: 13 bytes each, under the
// kernel's 15.
func linkNames(a, b string) (string, string) {
	h := hash(a + "\x00" + b)[:10]
	return "fl" + h + "a", "fl" + h + "b"
}

// cutTable is the nftables table in one namespace that cuts it off from peer.
func cutTable(peer string) string { return "ferry_cut_" + hash(peer)[:12] }

// Partition cuts every packet between namespaces a and b ("" is the host)
// with nftables: in each namespace side, a table drops what comes from and
// goes to the other side's addresses, so both directions time out as in a
// real partition rather than being refused. The host's own rules are never
// touched: with a "" side, the namespace side's table cuts both directions.
// Addresses the two sides share (a bubble's copy of a production network)
// are left alone: that traffic never crosses between them. Partitioning
// twice changes nothing; Heal undoes it, and deleting a namespace drops its
// tables.
func Partition(ctx context.Context, a, b string) error {
	const op = "network.partition"
	if err := checkPair(op, a, b); err != nil {
		return err
	}
	la, err := links(ctx, op, a)
	if err != nil {
		return err
	}
	lb, err := links(ctx, op, b)
	if err != nil {
		return err
	}
	for _, side := range []struct {
		ns, peer   string
		own, other []link
	}{{a, b, la, lb}, {b, a, lb, la}} {
		if side.ns == "" {
			continue
		}
		v4, v6 := cutAddrs(side.own, side.other)
		if len(v4)+len(v6) == 0 {
			return perm(op, "%q has no address of its own to cut from %q", side.peer, side.ns)
		}
		if err := nft(ctx, op, side.ns, cutScript(cutTable(side.peer), v4, v6)); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes the tables Partition made; what is not partitioned is fine.
func Heal(ctx context.Context, a, b string) error {
	const op = "network.heal"
	if err := checkPair(op, a, b); err != nil {
		return err
	}
	for _, side := range [][2]string{{a, b}, {b, a}} {
		ns, peer := side[0], side[1]
		if ns == "" || !Exists(ns) {
			continue
		}
		// Declaring the table first makes the delete succeed when it is absent.
		t := cutTable(peer)
		if err := nft(ctx, op, ns, fmt.Sprintf("table inet %s\ndelete table inet %s\n", t, t)); err != nil {
			return err
		}
	}
	return nil
}

func checkPair(op, a, b string) error {
	if a == b {
		return perm(op, "cannot partition %q from itself", a)
	}
	for _, ns := range []string{a, b} {
		if ns == "" {
			continue
		}
		if err := validNS(op, ns); err != nil {
			return err
		}
		if !Exists(ns) {
			return perm(op, "no namespace %q", ns)
		}
	}
	return nil
}

// cutAddrs are the other side's global addresses that own does not have.
func cutAddrs(own, other []link) (v4, v6 []string) {
	mine := map[string]bool{}
	for _, l := range own {
		for _, a := range l.Addrs {
			mine[a.Local] = true
		}
	}
	seen := map[string]bool{}
	for _, l := range other {
		for _, a := range l.Addrs {
			if a.Scope != "global" || mine[a.Local] || seen[a.Local] {
				continue
			}
			seen[a.Local] = true
			if a.Family == "inet6" {
				v6 = append(v6, a.Local)
			} else {
				v4 = append(v4, a.Local)
			}
		}
	}
	sort.Strings(v4)
	sort.Strings(v6)
	return v4, v6
}

func cutScript(table string, v4, v6 []string) string {
	var in, out, fwd []string
	if len(v4) > 0 {
		set := "{ " + strings.Join(v4, ", ") + " }"
		in = append(in, "ip saddr "+set+" drop")
		out = append(out, "ip daddr "+set+" drop")
		fwd = append(fwd, "ip saddr "+set+" drop", "ip daddr "+set+" drop")
	}
	if len(v6) > 0 {
		set := "{ " + strings.Join(v6, ", ") + " }"
		in = append(in, "ip6 saddr "+set+" drop")
		out = append(out, "ip6 daddr "+set+" drop")
		fwd = append(fwd, "ip6 saddr "+set+" drop", "ip6 daddr "+set+" drop")
	}
	chain := func(name, hook string, rules []string) string {
		return fmt.Sprintf("\tchain %s {\n\t\ttype filter hook %s priority -10; policy accept;\n\t\t%s\n\t}\n",
			name, hook, strings.Join(rules, "\n\t\t"))
	}
	// Declare, delete and re-create in one transaction: a second Partition
	// replaces the rules (the peer may have new addresses) atomically.
	return fmt.Sprintf("table inet %s\ndelete table inet %s\ntable inet %s {\n%s%s%s}\n",
		table, table, table, chain("input", "input", in), chain("output", "output", out), chain("forward", "forward", fwd))
}
