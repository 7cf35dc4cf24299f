package openstack_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/openstack"
	"github.com/ferrydr/ferry/drivers/openstack/openstacktest"
)

// TestDesignate drives the DNS port against real Designate (Debian's
// designate-api, -central, -worker, -producer and -mdns) whose pool target
// is a real BIND 9: what the adapter changes must reach Designate's API,
// go ACTIVE, and be what named answers.
func TestDesignate(t *testing.T) {
	d := openstacktest.StartDesignate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	zone, err := d.CreateZone(ctx, "ferry.test.", "hostmaster@ferry.test", 300)
	require.NoError(t, err)
	before, err := d.CreateRecordset(ctx, zone.ID, "app.ferry.test.", "A", 300, "10.0.0.1")
	require.NoError(t, err)
	requireNamedAnswer(ctx, t, d, "app.ferry.test.", "10.0.0.1", 300)

	a, err := openstack.New(openstack.Config{
		CloudsFile: d.CloudsYAML(t, "dns-cloud"),
		Sites:      map[string]openstack.Site{"site-a": {Cloud: "dns-cloud"}, "site-b": {Cloud: "dns-cloud"}},
		DNSSite:    "site-a",
		StateDir:   filepath.Join(t.TempDir(), "state"),
		Timeout:    10 * time.Second,
	})
	require.NoError(t, err)

	t.Run("Replace repoints the recordset and BIND serves it", func(t *testing.T) {
		require.NoError(t, a.Replace(ctx, "run1/dns/app", drivers.Record{Name: "app.ferry.test", Type: "A", TTL: 60, Value: "10.0.1.1"}))

		// Replace returns once Designate says ACTIVE: the raw recordset
		// shows the new records and TTL at once, as a new version.
		rs, err := d.FindRecordset(ctx, zone.ID, "app.ferry.test.", "A")
		require.NoError(t, err)
		require.Equal(t, before.ID, rs.ID, "the recordset is updated in place, not recreated")
		require.Equal(t, []string{"10.0.1.1"}, rs.Records)
		require.NotNil(t, rs.TTL)
		require.Equal(t, 60, *rs.TTL)
		require.Equal(t, "ACTIVE", rs.Status)
		require.Greater(t, rs.Version, before.Version)
		require.NotNil(t, rs.UpdatedAt)

		requireNamedAnswer(ctx, t, d, "app.ferry.test.", "10.0.1.1", 60)

		got, err := a.Get(ctx, "app.ferry.test", "A")
		require.NoError(t, err)
		require.Equal(t, drivers.Record{Name: "app.ferry.test", Type: "A", TTL: 60, Value: "10.0.1.1"}, got)

		// The same key again, even with another value, applies nothing.
		require.NoError(t, a.Replace(ctx, "run1/dns/app", drivers.Record{Name: "app.ferry.test", Type: "A", TTL: 5, Value: "10.9.9.9"}))
		again, err := d.FindRecordset(ctx, zone.ID, "app.ferry.test.", "A")
		require.NoError(t, err)
		require.Equal(t, rs.Version, again.Version, "a repeated key must not touch the recordset")
		require.Equal(t, *rs.UpdatedAt, *again.UpdatedAt)
		require.Equal(t, []string{"10.0.1.1"}, again.Records)
		requireNamedAnswer(ctx, t, d, "app.ferry.test.", "10.0.1.1", 60)

		// A new key asking for what the recordset already holds finds
		// nothing to change either.
		require.NoError(t, a.Replace(ctx, "run2/dns/app", drivers.Record{Name: "app.ferry.test", Type: "A", TTL: 60, Value: "10.0.1.1"}))
		same, err := d.FindRecordset(ctx, zone.ID, "app.ferry.test.", "A")
		require.NoError(t, err)
		require.Equal(t, rs.Version, same.Version, "a Replace with the value and TTL in place must not update")
	})

	t.Run("Replace creates a recordset the zone lacks", func(t *testing.T) {
		require.NoError(t, a.Replace(ctx, "run1/dns/db", drivers.Record{Name: "db.ferry.test.", Type: "A", TTL: 120, Value: "10.0.1.2"}))
		rs, err := d.FindRecordset(ctx, zone.ID, "db.ferry.test.", "A")
		require.NoError(t, err)
		require.Equal(t, []string{"10.0.1.2"}, rs.Records)
		require.Equal(t, "ACTIVE", rs.Status)
		requireNamedAnswer(ctx, t, d, "db.ferry.test.", "10.0.1.2", 120)
	})

	t.Run("a name no zone holds is a permanent error naming it", func(t *testing.T) {
		err := a.Replace(ctx, "run1/dns/stray", drivers.Record{Name: "www.nozone.example", Type: "A", TTL: 60, Value: "10.0.1.3"})
		require.Error(t, err)
		require.True(t, drivers.IsPermanent(err), "want Permanent, got %v", err)
		require.Contains(t, err.Error(), "www.nozone.example")
		_, err = a.Get(ctx, "www.nozone.example", "A")
		require.True(t, drivers.IsPermanent(err), "want Permanent, got %v", err)
		require.Contains(t, err.Error(), "www.nozone.example")
	})
}

// requireNamedAnswer polls the pool's named (bounded by the context and
// 30 s) until it answers name A with exactly value and ttl: Designate
// calls a change ACTIVE once named's serial caught up, and the answer is
// what the world would see.
func requireNamedAnswer(ctx context.Context, t *testing.T, d *openstacktest.Designate, name, value string, ttl uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	var last string
	for {
		r, _, err := c.ExchangeContext(ctx, q, d.NamedAddr)
		switch {
		case err != nil:
			last = err.Error()
		case r.Rcode != dns.RcodeSuccess:
			last = dns.RcodeToString[r.Rcode]
		default:
			var got []string
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok {
					got = append(got, fmt.Sprintf("%s/%d", a.A, a.Hdr.Ttl))
				}
			}
			last = strings.Join(got, " ")
			if !r.Authoritative {
				last += " (not authoritative)"
			} else if last == fmt.Sprintf("%s/%d", value, ttl) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("named at %s never answered %s A %s TTL %d; last answer: %s\n%s", d.NamedAddr, name, value, ttl, last, d.LogTail(20))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
