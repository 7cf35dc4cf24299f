package router

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.DNS = (*Tee)(nil)

// Zone is one DNS adapter a Tee writes to, named for errors.
type Zone struct {
	Name string
	DNS  drivers.DNS
}

// Tee is a DNS port that keeps one record set in several zones: the real
// authoritative server first, then copies that other parts of the system
// read (the simulator's zone, which its verification checks resolve
// against).
//
// Replace writes the record to every zone in order, under the caller's
// idempotency key, and stops at the first failure: a write counts only
// when it landed on all of them. A retry with the same key replays on the
// zones that took it (each keeps its own ledger) and applies on the rest,
// and a failed authoritative zone is never bypassed: the copies do not get
// ahead of the real server.
//
// Get answers from the first zone, the authoritative one, and reads the
// others too: when one of them does not hold the same value and TTL (a
// write that landed on some zones only) it returns a Retryable error
// naming the difference, so a caller that compares before it replaces
// (the failover's DNS step) replaces again instead of skipping.
type Tee struct {
	zones []Zone
}

// NewTee returns a Tee over zones; the first is authoritative.
func NewTee(zones ...Zone) *Tee { return &Tee{zones: zones} }

// Get reads the record from every zone; see Tee.
func (t *Tee) Get(ctx context.Context, name, typ string) (drivers.Record, error) {
	const op = "dns.get"
	if len(t.zones) == 0 {
		return drivers.Record{}, drivers.Errorf(drivers.Permanent, op, "the DNS tee has no zones")
	}
	first, err := t.zones[0].DNS.Get(ctx, name, typ)
	if err != nil {
		return drivers.Record{}, err
	}
	for _, z := range t.zones[1:] {
		r, err := z.DNS.Get(ctx, name, typ)
		if err != nil {
			return first, &drivers.Error{Kind: drivers.Retryable, Op: op,
				Err: fmt.Errorf("%s %s: %s holds %s, %s cannot tell: %w", name, typ, t.zones[0].Name, first.Value, z.Name, err)}
		}
		if !sameValue(r.Value, first.Value) || r.TTL != first.TTL {
			return first, drivers.Errorf(drivers.Retryable, op, "%s %s differs between zones: %s holds %s (ttl %d), %s holds %s (ttl %d)",
				name, typ, t.zones[0].Name, first.Value, first.TTL, z.Name, r.Value, r.TTL)
		}
	}
	return first, nil
}

// sameValue compares record data as DNS does: names case-insensitively,
// with or without their final dot.
func sameValue(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(a), "."), strings.TrimSuffix(strings.TrimSpace(b), "."))
}

// Replace writes r to every zone in order; see Tee.
func (t *Tee) Replace(ctx context.Context, key string, r drivers.Record) error {
	const op = "dns.replace"
	if len(t.zones) == 0 {
		return drivers.Errorf(drivers.Permanent, op, "the DNS tee has no zones")
	}
	for i, z := range t.zones {
		if err := z.DNS.Replace(ctx, key, r); err != nil {
			done := "nothing changed"
			if i > 0 {
				names := make([]string, i)
				for j := range names {
					names[j] = t.zones[j].Name
				}
				done = "applied on " + strings.Join(names, ", ") + " only"
			}
			return &drivers.Error{Kind: drivers.Kind(err), Op: op, Err: fmt.Errorf("zone %s (%s): %w", z.Name, done, err)}
		}
	}
	return nil
}
