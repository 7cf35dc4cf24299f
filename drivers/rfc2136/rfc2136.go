// Package rfc2136 adapts the DNS port to any authoritative server that
// accepts RFC 2136 dynamic updates signed with TSIG (RFC 8945): BIND, Knot,
// PowerDNS, Windows DNS with TSIG, and the many appliances built on them.
//
// The DNS library is github.com/miekg/dns v1, pinned at v1.1.73 in go.mod.
// Its successor, codeberg.org/miekg/dns (v2), is pre-1.0 and its API still
// moves; worse, the Go module proxy this project builds through does not
// serve it. v1 is frozen for features but still maintained for fixes, it has
// had RFC 2136 and TSIG support for a decade, and everything this adapter
// uses (update prerequisites, RemoveRRset and Insert, TSIG hmac-sha2) is the
// stable core of it. Moving to v2 when it reaches 1.0 touches this file
// only.
//
// Replace sends one UPDATE message that deletes the RRset and adds the new
// one, so a resolver never sees the name half-replaced. Idempotency keys are
// kept in the zone itself: the same UPDATE adds a TXT marker named after the
// key under _ferry-idem.<zone>, with the prerequisite that the marker does not
// exist yet. The server applies the change and records the key atomically, a
// replayed key is refused by the server's own prerequisite check, and every
// worker that talks to the zone shares the ledger. See docs/dns.md.
package rfc2136

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.DNS = (*Client)(nil)

// Port operation names, as in every adapter's errors.
const (
	opGet     = "dns.get"
	opReplace = "dns.replace"
)

// LedgerLabel is the label under the zone apex that holds the idempotency
// markers: <hash of key>._ferry-idem.<zone> TXT.
const LedgerLabel = "_ferry-idem"

// Defaults.
const (
	DefaultAlgorithm = "hmac-sha256"
	DefaultTimeout   = 5 * time.Second
)

// ErrNotFound is wrapped by Get's error when the name has no RRset of the
// type asked for (NXDOMAIN or NODATA).
var ErrNotFound = errors.New("no such record")

// ErrTSIG is wrapped by every error caused by the TSIG key: an unknown key
// name, a wrong secret or a clock too far off.
var ErrTSIG = errors.New("TSIG: bad key/signature")

// Config is how to reach one zone on its primary server.
type Config struct {
	// Server is the primary's "host:port" (port 53 if none is given).
	Server string
	// Zone is the zone's apex, e.g. "example.com" (a trailing dot is
	// optional).
	Zone string
	// KeyName is the TSIG key's name as the server knows it.
	KeyName string
	// Secret is the TSIG key's secret, base64 as in a named.conf key
	// statement. It never appears in an error, a log or String.
	Secret string
	// Algorithm is the TSIG algorithm: hmac-sha256 (the default),
	// hmac-sha224, hmac-sha384, hmac-sha512 or hmac-sha1.
	Algorithm string
	// Timeout bounds each call, dial and answer included (default 5s).
	Timeout time.Duration
	// Net is "tcp" (the default) or "udp". TCP fails at once on a closed
	// port and never truncates.
	Net string
}

// String leaves the secret out, so that a Config printed by accident leaks
// nothing.
func (c Config) String() string {
	return fmt.Sprintf("rfc2136{server=%s zone=%s key=%s algorithm=%s secret=<redacted>}",
		c.Server, c.Zone, c.KeyName, c.Algorithm)
}

// LogValue leaves the secret out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("server", c.Server),
		slog.String("zone", c.Zone),
		slog.String("key", c.KeyName),
		slog.String("algorithm", c.Algorithm),
	)
}

var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// Client is the DNS port for one zone.
type Client struct {
	server  string
	zone    string // absolute, lower case
	key     string // absolute, lower case
	alg     string
	timeout time.Duration
	client  *dns.Client
}

// New checks cfg and returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	const op = "dns.config"
	if cfg.Server == "" || cfg.Zone == "" || cfg.KeyName == "" || cfg.Secret == "" {
		return nil, drivers.Errorf(drivers.Permanent, op, "server, zone, key name and secret are required")
	}
	if _, err := base64.StdEncoding.DecodeString(cfg.Secret); err != nil {
		// Not %v of err: it quotes the offending byte of the secret.
		return nil, drivers.Errorf(drivers.Permanent, op, "the TSIG secret of key %q is not base64", cfg.KeyName)
	}
	server := cfg.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	zone := dns.CanonicalName(cfg.Zone)
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, drivers.Errorf(drivers.Permanent, op, "zone %q is not a domain name", cfg.Zone)
	}
	key := dns.CanonicalName(cfg.KeyName)
	alg := cfg.Algorithm
	if alg == "" {
		alg = DefaultAlgorithm
	}
	algName, ok := algorithms[strings.TrimSuffix(strings.ToLower(alg), ".")]
	if !ok {
		return nil, drivers.Errorf(drivers.Permanent, op, "unsupported TSIG algorithm %q", alg)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	netw := cfg.Net
	switch netw {
	case "":
		netw = "tcp"
	case "tcp", "udp":
	default:
		return nil, drivers.Errorf(drivers.Permanent, op, "net must be tcp or udp, not %q", cfg.Net)
	}
	return &Client{
		server:  server,
		zone:    zone,
		key:     key,
		alg:     algName,
		timeout: timeout,
		client: &dns.Client{
			Net:        netw,
			Timeout:    timeout,
			TsigSecret: map[string]string{key: cfg.Secret},
		},
	}, nil
}

// Zone is the zone the client updates, absolute.
func (c *Client) Zone() string { return c.zone }

// Get returns the first value of the RRset (name, typ) and its TTL, read
// from the primary itself (no cache in between). Value is the record's
// RDATA in zone-file form ("192.0.2.1", "www.example.com."). A missing RRset
// is a Permanent error wrapping ErrNotFound.
func (c *Client) Get(ctx context.Context, name, typ string) (drivers.Record, error) {
	fqdn, t, err := c.nameType(opGet, name, typ)
	if err != nil {
		return drivers.Record{}, err
	}
	rrs, err := c.lookup(ctx, opGet, fqdn, t)
	if err != nil {
		return drivers.Record{}, err
	}
	if len(rrs) == 0 {
		return drivers.Record{}, &drivers.Error{Kind: drivers.Permanent, Op: opGet,
			Err: fmt.Errorf("%w: %s %s", ErrNotFound, fqdn, dns.TypeToString[t])}
	}
	return toRecord(rrs[0]), nil
}

// Replace makes r the only record of its RRset, with r's TTL, in one UPDATE.
// A key that already succeeded changes nothing; the empty key is not
// recorded (every call applies, which for a replace lands on the same state).
func (c *Client) Replace(ctx context.Context, key string, r drivers.Record) error {
	fqdn, t, err := c.nameType(opReplace, r.Name, r.Type)
	if err != nil {
		return err
	}
	if t == dns.TypeCNAME && fqdn == c.zone {
		return drivers.Errorf(drivers.Permanent, opReplace, "a CNAME cannot stand at the zone apex %s", fqdn)
	}
	rr, err := c.parse(fqdn, t, r.TTL, r.Value)
	if err != nil {
		return err
	}

	m := new(dns.Msg)
	m.SetUpdate(c.zone)
	var marker string
	if key != "" {
		marker = c.markerName(key)
		// Prerequisite: this key was never applied.
		m.RRsetNotUsed([]dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: marker, Rrtype: dns.TypeTXT}}})
	}
	if t == dns.TypeCNAME {
		// A CNAME cannot share its name with other data: replacing it
		// means replacing whatever is at the name.
		m.RemoveName([]dns.RR{rr})
	} else {
		// Prerequisite: no CNAME at the name, where RFC 2136 (3.4.2.2)
		// would have the server drop our insert silently.
		m.RRsetNotUsed([]dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeCNAME}}})
		m.RemoveRRset([]dns.RR{rr})
	}
	m.Insert([]dns.RR{rr})
	if marker != "" {
		m.Insert([]dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: marker, Rrtype: dns.TypeTXT, Ttl: 0},
			Txt: []string{markerText(fqdn, t), "at=" + time.Now().UTC().Format(time.RFC3339)},
		}})
	}

	resp, err := c.exchange(ctx, opReplace, m)
	if err != nil {
		return err
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeYXRrset:
		// One of the prerequisites failed: either the key was applied
		// before, or the name holds a CNAME.
		return c.explainYXRRset(ctx, key, marker, fqdn, t)
	}
	return rcodeError(opReplace, resp.Rcode, fmt.Sprintf("replace %s %s", fqdn, dns.TypeToString[t]))
}

func (c *Client) explainYXRRset(ctx context.Context, key, marker, fqdn string, t uint16) error {
	if marker != "" {
		rrs, err := c.lookup(ctx, opReplace, marker, dns.TypeTXT)
		if err != nil {
			return err
		}
		for _, rr := range rrs {
			txt, ok := rr.(*dns.TXT)
			if !ok || len(txt.Txt) == 0 {
				continue
			}
			if txt.Txt[0] == markerText(fqdn, t) {
				return nil // applied before under this key: nothing to do
			}
			// Replaying another record's result would silently skip
			// this one: a key reused across records is a caller's bug.
			return drivers.Errorf(drivers.Permanent, opReplace,
				"idempotency key %q was already used for %s", key, strings.TrimPrefix(txt.Txt[0], "ferry "))
		}
	}
	return drivers.Errorf(drivers.Permanent, opReplace,
		"%s holds a CNAME: replace it with a CNAME, or remove it first", fqdn)
}

func markerText(fqdn string, t uint16) string {
	return "ferry dns.replace " + fqdn + " " + dns.TypeToString[t]
}

func (c *Client) markerName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16]) + "." + LedgerLabel + "." + c.zone
}

// lookup returns the records of RRset (fqdn, t) as the primary answers, in
// its order; none if the name or the RRset does not exist.
func (c *Client) lookup(ctx context.Context, op, fqdn string, t uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, t)
	m.RecursionDesired = false
	resp, err := c.exchange(ctx, op, m)
	if err != nil {
		return nil, err
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, rcodeError(op, resp.Rcode, fmt.Sprintf("query %s %s", fqdn, dns.TypeToString[t]))
	}
	var out []dns.RR
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Rrtype == t && strings.EqualFold(h.Name, fqdn) {
			out = append(out, rr)
		}
	}
	return out, nil
}

// exchange signs m, sends it and reads the answer within the configured
// timeout and ctx. It maps transport and TSIG failures to the port's kinds;
// the caller maps the answer's rcode.
func (c *Client) exchange(ctx context.Context, op string, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	m.SetTsig(c.key, c.alg, 300, time.Now().Unix())

	conn, err := c.client.DialContext(ctx, c.server)
	if err != nil {
		return nil, c.transportError(ctx, op, err)
	}
	defer conn.Close()
	// The library honours ctx's deadline but not its cancellation: closing
	// the connection ends a read that is still waiting.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	resp, _, err := c.client.ExchangeWithConnContext(ctx, m, conn)
	if resp != nil {
		if tsig := resp.IsTsig(); tsig != nil && tsig.Error != dns.RcodeSuccess {
			return nil, c.tsigError(op, int(tsig.Error))
		}
	}
	switch {
	case err == nil:
		return resp, nil
	case errors.Is(err, dns.ErrAuth) && resp != nil:
		// The library does not verify a NOTAUTH answer and says ErrAuth;
		// its TSIG error was clean (checked above), so the key is fine and
		// the rcode tells the rest.
		return resp, nil
	case isTSIGErr(err):
		return nil, c.tsigError(op, 0)
	}
	return nil, c.transportError(ctx, op, err)
}

func isTSIGErr(err error) bool {
	for _, e := range []error{dns.ErrSig, dns.ErrNoSig, dns.ErrTime, dns.ErrKeyAlg, dns.ErrSecret, dns.ErrAuth} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (c *Client) tsigError(op string, code int) error {
	detail := ""
	if code != 0 {
		detail = " (" + dns.RcodeToString[code] + ")"
		if code == dns.RcodeBadTime {
			detail += ": the clocks of Ferry and the server differ by more than 5 minutes"
		}
	}
	return &drivers.Error{Kind: drivers.Permanent, Op: op,
		Err: fmt.Errorf("%w%s: server %s refused key %q for zone %s", ErrTSIG, detail, c.server, strings.TrimSuffix(c.key, "."), c.zone)}
}

func (c *Client) transportError(ctx context.Context, op string, err error) error {
	// A caller that gave up is not the server's fault: retry later.
	if parent := context.Cause(ctx); parent != nil && !errors.Is(parent, context.DeadlineExceeded) {
		return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: fmt.Errorf("%s: %w", c.server, parent)}
	}
	var ne net.Error
	if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return &drivers.Error{Kind: drivers.Unreachable, Op: op,
			Err: fmt.Errorf("DNS server %s did not answer within %s: %w", c.server, c.timeout, err)}
	}
	return &drivers.Error{Kind: drivers.Unreachable, Op: op, Err: fmt.Errorf("DNS server %s: %w", c.server, err)}
}

// rcodeError maps an answer's rcode: SERVFAIL is the server's passing
// trouble; everything else (REFUSED, NOTAUTH, NOTZONE, FORMERR, NOTIMP,
// failed prerequisites) will answer the same the next time.
func rcodeError(op string, rcode int, what string) error {
	name := dns.RcodeToString[rcode]
	if name == "" {
		name = fmt.Sprintf("rcode %d", rcode)
	}
	kind, hint := drivers.Permanent, ""
	switch rcode {
	case dns.RcodeServerFailure:
		kind = drivers.Retryable
	case dns.RcodeNotAuth, dns.RcodeNotZone:
		hint = " (the server is not the primary of this zone)"
	case dns.RcodeRefused:
		hint = " (the server's policy forbids it)"
	}
	return drivers.Errorf(kind, op, "%s: server answered %s%s", what, name, hint)
}

// nameType makes name absolute within the zone and checks the type. A name
// of one label ("www") is relative to the zone, "@" is the apex, and any
// name with a dot is taken as fully qualified, trailing dot or not: it must
// lie in the zone. (Zone files would read "shop.example.com" as relative;
// here that would silently create shop.example.com.example.com.)
func (c *Client) nameType(op, name, typ string) (string, uint16, error) {
	n := strings.TrimSpace(name)
	if n == "" {
		return "", 0, drivers.Errorf(drivers.Permanent, op, "record needs a name")
	}
	var fqdn string
	switch {
	case n == "@":
		fqdn = c.zone
	case strings.Contains(n, "."):
		fqdn = dns.CanonicalName(n)
	default:
		fqdn = dns.CanonicalName(n + "." + c.zone)
	}
	if _, ok := dns.IsDomainName(fqdn); !ok {
		return "", 0, drivers.Errorf(drivers.Permanent, op, "%q is not a domain name", name)
	}
	if !dns.IsSubDomain(c.zone, fqdn) {
		return "", 0, drivers.Errorf(drivers.Permanent, op, "%s is outside zone %s", fqdn, c.zone)
	}
	if dns.IsSubDomain(LedgerLabel+"."+c.zone, fqdn) {
		return "", 0, drivers.Errorf(drivers.Permanent, op, "%s is Ferry's idempotency ledger", fqdn)
	}
	t, ok := dns.StringToType[strings.ToUpper(strings.TrimSpace(typ))]
	if !ok {
		return "", 0, drivers.Errorf(drivers.Permanent, op, "unknown record type %q", typ)
	}
	switch t {
	case dns.TypeSOA, dns.TypeANY, dns.TypeTSIG, dns.TypeTKEY, dns.TypeOPT, dns.TypeAXFR, dns.TypeIXFR:
		return "", 0, drivers.Errorf(drivers.Permanent, op, "record type %s cannot be read or replaced", typ)
	}
	return fqdn, t, nil
}

// parse builds the record from its zone-file RDATA; relative names in it
// (a CNAME's target, say) are relative to the zone.
func (c *Client) parse(fqdn string, t uint16, ttl int, value string) (dns.RR, error) {
	if ttl < 0 || ttl > 1<<31-1 {
		return nil, drivers.Errorf(drivers.Permanent, opReplace, "TTL %d is out of range", ttl)
	}
	if strings.TrimSpace(value) == "" || strings.ContainsAny(value, "\n\r") {
		return nil, drivers.Errorf(drivers.Permanent, opReplace, "record value must be one non-empty line")
	}
	line := fmt.Sprintf("%s %d IN %s %s", fqdn, ttl, dns.TypeToString[t], value)
	zp := dns.NewZoneParser(strings.NewReader(line), c.zone, "")
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil || !ok || rr == nil {
		return nil, drivers.Errorf(drivers.Permanent, opReplace, "%s value %q does not parse", dns.TypeToString[t], value)
	}
	if _, more := zp.Next(); more {
		return nil, drivers.Errorf(drivers.Permanent, opReplace, "record value must hold one record")
	}
	return rr, nil
}

func toRecord(rr dns.RR) drivers.Record {
	h := rr.Header()
	return drivers.Record{
		Name:  h.Name,
		Type:  dns.TypeToString[h.Rrtype],
		TTL:   int(h.Ttl),
		Value: strings.TrimPrefix(rr.String(), h.String()),
	}
}
