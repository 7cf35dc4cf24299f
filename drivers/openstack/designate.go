package openstack

// The DNS port on Designate (DNS API v2). Designate is one per cloud: the
// configuration's dns_site names the site whose Designate holds the zones.
// A record's zone is the zone with the longest name that ends the
// record's name; its recordset is found by name and type.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/dns/v2/recordsets"
	"github.com/gophercloud/gophercloud/v2/openstack/dns/v2/zones"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.DNS = (*Adapter)(nil)

// designate returns the client of the Designate that holds the zones.
func (a *Adapter) designate(ctx context.Context, op string) (*gophercloud.ServiceClient, error) {
	if a.cfg.DNSSite == "" {
		return nil, drivers.Errorf(drivers.Permanent, op, "dns_site is not set: the OpenStack adapter needs the site whose Designate holds the zones")
	}
	c, err := a.client(ctx, op, a.cfg.DNSSite, svcDNS)
	if err != nil {
		return nil, err
	}
	return c.sc, nil
}

// dnsName is a name as Designate writes it: lower case, ending in a dot.
func dnsName(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) + "." }

// zoneFor finds the zone that holds a name.
func (a *Adapter) zoneFor(ctx context.Context, op string, sc *gophercloud.ServiceClient, name string) (zones.Zone, error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := zones.List(sc, nil).AllPages(rctx)
	if err != nil {
		return zones.Zone{}, fmt.Errorf("site %s: list Designate's zones: %w", a.cfg.DNSSite, err)
	}
	all, err := zones.ExtractZones(pages)
	if err != nil {
		return zones.Zone{}, err
	}
	fq := dnsName(name)
	var best *zones.Zone
	var names []string
	for i, z := range all {
		zn := dnsName(z.Name)
		names = append(names, zn)
		if (fq == zn || strings.HasSuffix(fq, "."+zn)) && (best == nil || len(zn) > len(dnsName(best.Name))) {
			best = &all[i]
		}
	}
	if best == nil {
		sort.Strings(names)
		return zones.Zone{}, drivers.Errorf(drivers.Permanent, op, "no zone in Designate at site %s holds %s (zones: %s)", a.cfg.DNSSite, fq, strings.Join(names, ", "))
	}
	return *best, nil
}

// recordsetOf finds a name's recordset of a type in a zone (nil if none).
func (a *Adapter) recordsetOf(ctx context.Context, sc *gophercloud.ServiceClient, zoneID, name, typ string) (*recordsets.RecordSet, error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := recordsets.ListByZone(sc, zoneID, recordsets.ListOpts{Name: dnsName(name), Type: typ}).AllPages(rctx)
	if err != nil {
		return nil, fmt.Errorf("site %s: list the %s recordsets of %s: %w", a.cfg.DNSSite, typ, name, err)
	}
	all, err := recordsets.ExtractRecordSets(pages)
	if err != nil {
		return nil, err
	}
	for i, rs := range all {
		if dnsName(rs.Name) == dnsName(name) && strings.EqualFold(rs.Type, typ) {
			return &all[i], nil
		}
	}
	return nil, nil
}

func checkRecord(op string, name, typ string) error {
	if name == "" || typ == "" {
		return drivers.Errorf(drivers.Permanent, op, "a record needs a name and a type (%q, %q)", name, typ)
	}
	return nil
}

// Get reads a record. Several values of one recordset come back joined by
// commas, so that a compare with one value fails and Replace makes it one.
// A recordset without its own TTL reports the zone's.
func (a *Adapter) Get(ctx context.Context, name, typ string) (drivers.Record, error) {
	const op = "dns.get"
	if err := checkRecord(op, name, typ); err != nil {
		return drivers.Record{}, err
	}
	typ = strings.ToUpper(typ)
	sc, err := a.designate(ctx, op)
	if err != nil {
		return drivers.Record{}, err
	}
	z, err := a.zoneFor(ctx, op, sc, name)
	if err != nil {
		return drivers.Record{}, classify(ctx, op, err)
	}
	rs, err := a.recordsetOf(ctx, sc, z.ID, name, typ)
	if err != nil {
		return drivers.Record{}, classify(ctx, op, err)
	}
	if rs == nil {
		return drivers.Record{}, drivers.Errorf(drivers.Permanent, op, "no %s record %s in zone %s", typ, dnsName(name), z.Name)
	}
	ttl := rs.TTL
	if ttl == 0 {
		ttl = z.TTL
	}
	return drivers.Record{Name: name, Type: typ, TTL: ttl, Value: strings.Join(rs.Records, ",")}, nil
}

// Replace makes the record hold exactly the value, with the TTL (0 keeps
// the recordset's, or the zone's for a new one): the recordset is updated,
// or created in its zone, and the call returns once Designate shows it
// ACTIVE. A recordset that already holds both is left alone.
func (a *Adapter) Replace(ctx context.Context, key string, r drivers.Record) error {
	const op = "dns.replace"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		if err := checkRecord(op, r.Name, r.Type); err != nil {
			return struct{}{}, err
		}
		if r.Value == "" || r.TTL < 0 {
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "record %s %s: a value and a TTL of 0 or more are required (%q, %d)", r.Type, r.Name, r.Value, r.TTL)
		}
		typ := strings.ToUpper(r.Type)
		sc, err := a.designate(ctx, op)
		if err != nil {
			return struct{}{}, err
		}
		z, err := a.zoneFor(ctx, op, sc, r.Name)
		if err != nil {
			return struct{}{}, err
		}
		rs, err := a.recordsetOf(ctx, sc, z.ID, r.Name, typ)
		if err != nil {
			return struct{}{}, err
		}
		rctx, cancel := a.withTimeout(ctx)
		defer cancel()
		var id string
		switch {
		case rs != nil && len(rs.Records) == 1 && rs.Records[0] == r.Value && (r.TTL == 0 || rs.TTL == r.TTL):
			id = rs.ID
		case rs != nil:
			opts := recordsets.UpdateOpts{Records: []string{r.Value}}
			if r.TTL > 0 {
				opts.TTL = &r.TTL
			}
			got, err := recordsets.Update(rctx, sc, z.ID, rs.ID, opts).Extract()
			if err != nil {
				return struct{}{}, fmt.Errorf("site %s: update recordset %s %s: %w", a.cfg.DNSSite, typ, rs.Name, err)
			}
			id = got.ID
		default:
			got, err := recordsets.Create(rctx, sc, z.ID, recordsets.CreateOpts{Name: dnsName(r.Name), Type: typ, TTL: r.TTL, Records: []string{r.Value}}).Extract()
			if err != nil {
				return struct{}{}, fmt.Errorf("site %s: create recordset %s %s in zone %s: %w", a.cfg.DNSSite, typ, dnsName(r.Name), z.Name, err)
			}
			id = got.ID
		}
		return struct{}{}, a.waitRecordset(ctx, op, sc, z.ID, id)
	})
	return err
}

// waitRecordset waits until Designate has pushed a recordset to its DNS
// servers (status ACTIVE); ERROR is a permanent failure.
func (a *Adapter) waitRecordset(ctx context.Context, op string, sc *gophercloud.ServiceClient, zoneID, id string) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	for {
		rctx, rcancel := a.withTimeout(ctx)
		rs, err := recordsets.Get(rctx, sc, zoneID, id).Extract()
		rcancel()
		switch {
		case err == nil && rs.Status == "ACTIVE":
			return nil
		case err == nil && rs.Status == "ERROR":
			return drivers.Errorf(drivers.Permanent, op, "Designate at site %s put recordset %s %s in ERROR", a.cfg.DNSSite, rs.Type, rs.Name)
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("recordset %s is %s", rs.Name, rs.Status)
			}
			return drivers.Errorf(drivers.Retryable, op, "Designate at site %s: not ACTIVE after %s: %v", a.cfg.DNSSite, a.cfg.SettleTimeout, err)
		case <-time.After(pollEvery):
		}
	}
}
