package rfc2136_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/rfc2136"
)

// seed is the zone every test starts from: each test has a server of its
// own (named starts in about 0.1s), so tests can run in any order and again.
var seed = []drivers.Record{
	{Name: "multi", Type: "A", TTL: 300, Value: "192.0.2.1"},
	{Name: "multi", Type: "A", TTL: 300, Value: "192.0.2.2"},
	{Name: "multi", Type: "A", TTL: 300, Value: "192.0.2.3"},
	{Name: "keep", Type: "A", TTL: 300, Value: "192.0.2.50"},
	{Name: "alias", Type: "CNAME", TTL: 300, Value: "keep"},
	{Name: "flip", Type: "A", TTL: 300, Value: "192.0.2.60"},
}

func newClient(t *testing.T, cfg rfc2136.Config) *rfc2136.Client {
	t.Helper()
	c, err := rfc2136.New(cfg)
	require.NoError(t, err)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// raw asks the server directly, unsigned and over UDP: no adapter code in
// between.
func raw(t *testing.T, addr, name string, typ uint16) []dns.RR {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), typ)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(q, addr)
	require.NoError(t, err)
	require.Contains(t, []int{dns.RcodeSuccess, dns.RcodeNameError}, r.Rcode)
	require.True(t, r.Authoritative, "the answer comes from the zone itself")
	var out []dns.RR
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == typ && strings.EqualFold(rr.Header().Name, dns.Fqdn(name)) {
			out = append(out, rr)
		}
	}
	return out
}

func serial(t *testing.T, n *rfc2136.Named) uint32 {
	t.Helper()
	rrs := raw(t, n.Addr, n.Zone, dns.TypeSOA)
	require.Len(t, rrs, 1)
	return rrs[0].(*dns.SOA).Serial
}

func requireKind(t *testing.T, err error, kind string) *drivers.Error {
	t.Helper()
	require.Error(t, err)
	var de *drivers.Error
	require.ErrorAs(t, err, &de, "a typed drivers error")
	require.Equal(t, kind, de.Kind, "%v", err)
	return de
}

func TestReplaceThenGet(t *testing.T) {
	n := rfc2136.StartTestServer(t, seed...)
	c := newClient(t, n.Config())
	ctx := ctxT(t)

	require.NoError(t, c.Replace(ctx, "run1/dns/app", drivers.Record{Name: "app", Type: "A", TTL: 120, Value: "192.0.2.10"}))

	got, err := c.Get(ctx, "app", "A")
	require.NoError(t, err)
	require.Equal(t, drivers.Record{Name: "app." + n.Zone, Type: "A", TTL: 120, Value: "192.0.2.10"}, got)

	rrs := raw(t, n.Addr, "app."+n.Zone, dns.TypeA)
	require.Len(t, rrs, 1)
	require.Equal(t, "192.0.2.10", rrs[0].(*dns.A).A.String())
	require.EqualValues(t, 120, rrs[0].Header().Ttl, "the TTL asked for is the TTL served")

	// The same name, fully qualified with or without the dot; a new TTL.
	require.NoError(t, c.Replace(ctx, "run1/dns/app2", drivers.Record{Name: "APP." + strings.TrimSuffix(n.Zone, "."), Type: "a", TTL: 30, Value: "192.0.2.11"}))
	rrs = raw(t, n.Addr, "app."+n.Zone, dns.TypeA)
	require.Len(t, rrs, 1)
	require.Equal(t, "192.0.2.11", rrs[0].(*dns.A).A.String())
	require.EqualValues(t, 30, rrs[0].Header().Ttl)

	// Other types: a relative CNAME target lands in the zone; TXT keeps its
	// quoting.
	require.NoError(t, c.Replace(ctx, "run1/dns/www", drivers.Record{Name: "www", Type: "CNAME", TTL: 60, Value: "app"}))
	got, err = c.Get(ctx, "www."+n.Zone, "CNAME")
	require.NoError(t, err)
	require.Equal(t, "app."+n.Zone, got.Value)
	require.NoError(t, c.Replace(ctx, "run1/dns/txt", drivers.Record{Name: "note", Type: "TXT", TTL: 60, Value: `"site b active"`}))
	rrs = raw(t, n.Addr, "note."+n.Zone, dns.TypeTXT)
	require.Len(t, rrs, 1)
	require.Equal(t, []string{"site b active"}, rrs[0].(*dns.TXT).Txt)
}

func TestReplaceIsAtomic(t *testing.T) {
	n := rfc2136.StartTestServer(t, seed...)
	c := newClient(t, n.Config())
	ctx := ctxT(t)
	name := "multi." + n.Zone
	require.Len(t, raw(t, n.Addr, name, dns.TypeA), 3, "the seeded RRset has three records")
	before := serial(t, n)

	require.NoError(t, c.Replace(ctx, "run2/dns/multi", drivers.Record{Name: "multi", Type: "A", TTL: 90, Value: "198.51.100.7"}))

	rrs := raw(t, n.Addr, name, dns.TypeA)
	require.Len(t, rrs, 1, "three records replaced by exactly one")
	require.Equal(t, "198.51.100.7", rrs[0].(*dns.A).A.String())
	require.EqualValues(t, 90, rrs[0].Header().Ttl)
	// named bumps the serial once per UPDATE it applies: the delete, the
	// add and the idempotency marker were one transaction.
	require.Equal(t, before+1, serial(t, n))
	// Other RRsets are untouched.
	require.Len(t, raw(t, n.Addr, "keep."+n.Zone, dns.TypeA), 1)
}

func TestWrongKeyIsRefusedAndChangesNothing(t *testing.T) {
	n := rfc2136.StartTestServer(t, seed...)
	ctx := ctxT(t)
	before := serial(t, n)
	wrong := make([]byte, 32)
	_, _ = rand.Read(wrong)
	wrongSecret := base64.StdEncoding.EncodeToString(wrong)

	badSecret := n.Config()
	badSecret.Secret = wrongSecret
	badName := n.Config()
	badName.KeyName = "nobody-key"
	for name, cfg := range map[string]rfc2136.Config{"wrong secret": badSecret, "unknown key name": badName} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, cfg)
			err := c.Replace(ctx, "run3/dns/flip/"+name, drivers.Record{Name: "flip", Type: "A", TTL: 60, Value: "203.0.113.66"})
			requireKind(t, err, drivers.Permanent)
			require.ErrorIs(t, err, rfc2136.ErrTSIG)
			require.Contains(t, err.Error(), "TSIG: bad key/signature")
			require.NotContains(t, err.Error(), n.Secret)
			require.NotContains(t, err.Error(), wrongSecret)

			_, err = c.Get(ctx, "flip", "A")
			requireKind(t, err, drivers.Permanent)
			require.ErrorIs(t, err, rfc2136.ErrTSIG)
		})
	}

	rrs := raw(t, n.Addr, "flip."+n.Zone, dns.TypeA)
	require.Len(t, rrs, 1)
	require.Equal(t, "192.0.2.60", rrs[0].(*dns.A).A.String(), "nothing changed")
	require.Equal(t, before, serial(t, n), "the zone did not change at all")
}

func TestUnreachable(t *testing.T) {
	rec := drivers.Record{Name: "app", Type: "A", TTL: 60, Value: "192.0.2.1"}
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

	// Nothing listens: TCP is refused at once.
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	require.NoError(t, closed.Close())

	// A TCP server that accepts and never answers, and a UDP one that reads
	// and never answers: only the timeout ends the call.
	silentTCP, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { silentTCP.Close() })
	go func() {
		for {
			conn, err := silentTCP.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	silentUDP, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { silentUDP.Close() })

	for _, tc := range []struct{ name, addr, net string }{
		{"refused", closedAddr, "tcp"},
		{"silent tcp", silentTCP.Addr().String(), "tcp"},
		{"silent udp", silentUDP.LocalAddr().String(), "udp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, rfc2136.Config{Server: tc.addr, Zone: "ferry.test", KeyName: "k", Secret: secret,
				Timeout: 300 * time.Millisecond, Net: tc.net})
			start := time.Now()
			requireKind(t, c.Replace(context.Background(), "run4/dns/app", rec), drivers.Unreachable)
			_, err := c.Get(context.Background(), "app", "A")
			requireKind(t, err, drivers.Unreachable)
			require.Less(t, time.Since(start), 2*time.Second, "within the configured timeout, twice")
		})
	}

	t.Run("caller cancels", func(t *testing.T) {
		c := newClient(t, rfc2136.Config{Server: silentTCP.Addr().String(), Zone: "ferry.test", KeyName: "k", Secret: secret, Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := c.Replace(ctx, "run4/dns/app", rec)
		requireKind(t, err, drivers.Retryable)
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), 2*time.Second, "cancellation ends a read in progress")
	})
}

func TestReplaceIsIdempotent(t *testing.T) {
	n := rfc2136.StartTestServer(t, seed...)
	c := newClient(t, n.Config())
	ctx := ctxT(t)
	rec := drivers.Record{Name: "idem", Type: "A", TTL: 60, Value: "192.0.2.70"}

	require.NoError(t, c.Replace(ctx, "run5/dns/idem", rec))
	s1 := serial(t, n)

	// The same key again: nothing is sent to the zone's data.
	require.NoError(t, c.Replace(ctx, "run5/dns/idem", rec))
	require.Equal(t, s1, serial(t, n), "a replayed key changes nothing")

	// Someone else repoints the record; replaying the old key must not
	// undo that.
	require.NoError(t, c.Replace(ctx, "run6/dns/idem", drivers.Record{Name: "idem", Type: "A", TTL: 60, Value: "192.0.2.71"}))
	require.NoError(t, c.Replace(ctx, "run5/dns/idem", rec))
	got, err := c.Get(ctx, "idem", "A")
	require.NoError(t, err)
	require.Equal(t, "192.0.2.71", got.Value, "the first key was not applied twice")

	// A new key with the value already there leaves the RRset as it is.
	require.NoError(t, c.Replace(ctx, "run7/dns/idem", drivers.Record{Name: "idem", Type: "A", TTL: 60, Value: "192.0.2.71"}))
	rrs := raw(t, n.Addr, "idem."+n.Zone, dns.TypeA)
	require.Len(t, rrs, 1)
	require.Equal(t, "192.0.2.71", rrs[0].(*dns.A).A.String())
	require.EqualValues(t, 60, rrs[0].Header().Ttl)

	// A key reused for another record is a caller's bug, not a replay.
	err = c.Replace(ctx, "run5/dns/idem", drivers.Record{Name: "other", Type: "A", TTL: 60, Value: "192.0.2.72"})
	requireKind(t, err, drivers.Permanent)
	require.Contains(t, err.Error(), "already used for dns.replace idem."+n.Zone+" A")
	require.Empty(t, raw(t, n.Addr, "other."+n.Zone, dns.TypeA))

	// The ledger survives the client: a new one (a restarted worker) sees it.
	before := serial(t, n)
	require.NoError(t, newClient(t, n.Config()).Replace(ctx, "run6/dns/idem", drivers.Record{Name: "idem", Type: "A", TTL: 60, Value: "192.0.2.71"}))
	require.Equal(t, before, serial(t, n))
}

func TestBadInputIsPermanent(t *testing.T) {
	n := rfc2136.StartTestServer(t, seed...)
	c := newClient(t, n.Config())
	ctx := ctxT(t)
	before := serial(t, n)
	for name, r := range map[string]drivers.Record{
		"outside the zone":        {Name: "www.example.org.", Type: "A", TTL: 60, Value: "192.0.2.1"},
		"outside, no dot":         {Name: "www.example.org", Type: "A", TTL: 60, Value: "192.0.2.1"},
		"no name":                 {Name: "", Type: "A", TTL: 60, Value: "192.0.2.1"},
		"unknown type":            {Name: "x", Type: "BOGUS", TTL: 60, Value: "192.0.2.1"},
		"SOA":                     {Name: "@", Type: "SOA", TTL: 60, Value: "a. b. 1 2 3 4 5"},
		"CNAME at the apex":       {Name: "@", Type: "CNAME", TTL: 60, Value: "keep"},
		"bad address":             {Name: "x", Type: "A", TTL: 60, Value: "not-an-ip"},
		"two records in one":      {Name: "x", Type: "A", TTL: 60, Value: "192.0.2.1\nevil 60 IN A 192.0.2.2"},
		"negative TTL":            {Name: "x", Type: "A", TTL: -1, Value: "192.0.2.1"},
		"Ferry's own ledger name": {Name: "abc._ferry-idem." + n.Zone, Type: "TXT", TTL: 60, Value: `"x"`},
	} {
		t.Run(name, func(t *testing.T) {
			requireKind(t, c.Replace(ctx, "run8/dns/"+name, r), drivers.Permanent)
		})
	}
	_, err := c.Get(ctx, "www.example.org.", "A")
	requireKind(t, err, drivers.Permanent)
	require.Equal(t, before, serial(t, n), "nothing reached the zone")
}

func TestGetNotFound(t *testing.T) {
	n := rfc2136.StartTestServer(t, seed...)
	c := newClient(t, n.Config())
	ctx := ctxT(t)
	for _, q := range [][2]string{{"nosuchname", "A"}, {"keep", "AAAA"}} {
		_, err := c.Get(ctx, q[0], q[1])
		requireKind(t, err, drivers.Permanent)
		require.ErrorIs(t, err, rfc2136.ErrNotFound)
	}
}

func TestCNAMEConflicts(t *testing.T) {
	n := rfc2136.StartTestServer(t, seed...)
	c := newClient(t, n.Config())
	ctx := ctxT(t)

	// An A where a CNAME stands would be dropped silently by the server:
	// the adapter says so instead, and records no key.
	err := c.Replace(ctx, "run9/dns/alias", drivers.Record{Name: "alias", Type: "A", TTL: 60, Value: "192.0.2.90"})
	requireKind(t, err, drivers.Permanent)
	require.Contains(t, err.Error(), "holds a CNAME")
	require.Len(t, raw(t, n.Addr, "alias."+n.Zone, dns.TypeCNAME), 1)

	// A CNAME replaces whatever is at its name.
	require.NoError(t, c.Replace(ctx, "run9/dns/keep", drivers.Record{Name: "conflict", Type: "A", TTL: 60, Value: "192.0.2.91"}))
	require.NoError(t, c.Replace(ctx, "run9/dns/keep-cname", drivers.Record{Name: "conflict", Type: "CNAME", TTL: 60, Value: "keep"}))
	require.Empty(t, raw(t, n.Addr, "conflict."+n.Zone, dns.TypeA))
	got, err := c.Get(ctx, "conflict", "CNAME")
	require.NoError(t, err)
	require.Equal(t, "keep."+n.Zone, got.Value)
}

func TestServerFailureIsRetryable(t *testing.T) {
	// A server whose journal cannot be written: named answers the update
	// SERVFAIL, and a retry once the disk is fixed succeeds.
	n := rfc2136.StartTestServer(t)
	c := newClient(t, n.Config())
	ctx := ctxT(t)
	jnl := filepath.Join(n.Dir, "zone.db.jnl")
	require.NoError(t, os.Mkdir(jnl, 0o700))

	rec := drivers.Record{Name: "app", Type: "A", TTL: 60, Value: "192.0.2.100"}
	err := c.Replace(ctx, "run10/dns/app", rec)
	requireKind(t, err, drivers.Retryable)
	require.Contains(t, err.Error(), "SERVFAIL")
	require.Empty(t, raw(t, n.Addr, "app."+n.Zone, dns.TypeA))

	require.NoError(t, os.Remove(jnl))
	require.NoError(t, c.Replace(ctx, "run10/dns/app", rec), "the same key, retried, applies once")
	require.Len(t, raw(t, n.Addr, "app."+n.Zone, dns.TypeA), 1)
}

func TestConfig(t *testing.T) {
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	cfg := rfc2136.Config{Server: "127.0.0.1:53", Zone: "ferry.test", KeyName: "k", Secret: secret}
	require.NotContains(t, fmt.Sprintf("%v %+v %s", cfg, cfg, cfg), secret)

	for name, mod := range map[string]func(*rfc2136.Config){
		"no server":     func(c *rfc2136.Config) { c.Server = "" },
		"bad secret":    func(c *rfc2136.Config) { c.Secret = "not base64 !" + secret },
		"bad algorithm": func(c *rfc2136.Config) { c.Algorithm = "hmac-md5" },
		"bad net":       func(c *rfc2136.Config) { c.Net = "quic" },
	} {
		t.Run(name, func(t *testing.T) {
			c := cfg
			mod(&c)
			_, err := rfc2136.New(c)
			requireKind(t, err, drivers.Permanent)
			require.NotContains(t, err.Error(), secret)
		})
	}
	c, err := rfc2136.New(cfg)
	require.NoError(t, err)
	require.Equal(t, "ferry.test.", c.Zone())
	require.False(t, errors.Is(err, rfc2136.ErrTSIG))
}

func TestZoneNotServedIsPermanent(t *testing.T) {
	n := rfc2136.StartTestServer(t)
	cfg := n.Config()
	cfg.Zone = "elsewhere.test"
	c := newClient(t, cfg)
	err := c.Replace(ctxT(t), "run11/dns/app", drivers.Record{Name: "app", Type: "A", TTL: 60, Value: "192.0.2.1"})
	requireKind(t, err, drivers.Permanent)
	require.NotErrorIs(t, err, rfc2136.ErrTSIG, "the key is right; the zone is wrong: %v", err)
	require.Contains(t, err.Error(), "not the primary of this zone")
}
