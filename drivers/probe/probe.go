// Package probe is a real verification adapter: it runs a group's http,
// tcp and dns checks from the worker's own host, the way an operator
// checks a service by hand after a failover. It is what a worker on a real
// cloud uses for those checks (the simulator answers them from its model;
// sql checks go to the database adapters).
//
// Each site may name the DNS server its clients ask (a check reads the
// answer that site's users get, not the worker's own resolver), and a
// network a probe cannot reach from here (a drill's isolated bubble) is
// refused with the reason rather than checked from outside, where it
// would prove nothing.
package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/ferrydr/ferry/drivers"
)

// Site is how checks reach one site.
type Site struct {
	// Resolver is the site's DNS server, host:port; empty uses the
	// worker's resolver.
	Resolver string `yaml:"resolver,omitempty" json:"resolver,omitempty"`
}

// Probe runs checks from this host.
type Probe struct {
	Sites map[string]Site
	// Timeout bounds each check (default 10s).
	Timeout time.Duration
	// InsecureTLS skips certificate checks for https targets (a DR site's
	// service often answers under a certificate for the primary's name).
	InsecureTLS bool
}

var _ drivers.Verify = (*Probe)(nil)

const op = "verify.check"

// Check runs one check at site. network is the network the check runs
// from: empty means the site's production networks, reachable from here;
// anything else is a bubble this host is not in.
func (p *Probe) Check(ctx context.Context, site, network string, c drivers.CheckSpec) (drivers.CheckResult, error) {
	res := drivers.CheckResult{Name: c.Name}
	if network != "" {
		return res, drivers.Errorf(drivers.Permanent, op, "check %s: the probe runs on the worker's host, which is outside network %q; a check inside a drill bubble needs a probe inside it", c.Name, network)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var detail string
	var err error
	switch c.Type {
	case "http":
		detail, err = p.http(ctx, c)
	case "tcp":
		detail, err = p.tcp(ctx, site, c)
	case "dns":
		detail, err = p.dns(ctx, site, c)
	default:
		return res, drivers.Errorf(drivers.Permanent, op, "check %s: the probe runs http, tcp and dns checks, not %q", c.Name, c.Type)
	}
	if err != nil {
		return res, err
	}
	res.Passed, res.Detail, res.Elapsed = detail == "", detail, time.Since(start)
	return res, nil
}

// http passes when GET Target answers with Expect (a status code, default
// any 2xx or 3xx).
func (p *Probe) http(ctx context.Context, c drivers.CheckSpec) (string, error) {
	want := 0
	if c.Expect != "" {
		n, err := strconv.Atoi(c.Expect)
		if err != nil || n < 100 || n > 599 {
			return "", drivers.Errorf(drivers.Permanent, op, "check %s: expect %q is not an HTTP status", c.Name, c.Expect)
		}
		want = n
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Target, nil)
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return "", drivers.Errorf(drivers.Permanent, op, "check %s: target %q is not an http(s) URL", c.Name, c.Target)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: p.InsecureTLS} //nolint:gosec // operator's choice, documented
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Sprintf("GET %s: %v", c.Target, err), nil
	}
	resp.Body.Close()
	ok := resp.StatusCode == want || (want == 0 && resp.StatusCode < 400)
	if !ok {
		return fmt.Sprintf("GET %s answered %d, want %s", c.Target, resp.StatusCode, orDefault(c.Expect, "2xx/3xx")), nil
	}
	return "", nil
}

// tcp passes when Target (host:port) accepts a connection; the host is
// resolved by the site's resolver.
func (p *Probe) tcp(ctx context.Context, site string, c drivers.CheckSpec) (string, error) {
	host, port, err := net.SplitHostPort(c.Target)
	if err != nil {
		return "", drivers.Errorf(drivers.Permanent, op, "check %s: target %q is not host:port", c.Name, c.Target)
	}
	addr := host
	if net.ParseIP(host) == nil {
		addrs, detail, err := p.resolve(ctx, site, host, dns.TypeA)
		if err != nil || detail != "" {
			return detail, err
		}
		addr = addrs[0]
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, port))
	if err != nil {
		return fmt.Sprintf("connect %s (%s): %v", c.Target, addr, err), nil
	}
	conn.Close()
	return "", nil
}

// dns passes when Target's A record (or the type in "TYPE:" before the
// name) resolves at the site, to Expect when it is set.
func (p *Probe) dns(ctx context.Context, site string, c drivers.CheckSpec) (string, error) {
	name, typ := c.Target, dns.TypeA
	if t, n, ok := strings.Cut(c.Target, ":"); ok {
		tt, known := dns.StringToType[strings.ToUpper(t)]
		if !known {
			return "", drivers.Errorf(drivers.Permanent, op, "check %s: unknown record type %q in target", c.Name, t)
		}
		name, typ = n, tt
	}
	values, detail, err := p.resolve(ctx, site, name, typ)
	if err != nil || detail != "" {
		return detail, err
	}
	if c.Expect == "" {
		return "", nil
	}
	for _, v := range values {
		if v == c.Expect {
			return "", nil
		}
	}
	return fmt.Sprintf("%s resolves to %s, want %s", name, strings.Join(values, ", "), c.Expect), nil
}

// resolve asks the site's resolver (or the host's) for name; detail says
// why a name did not resolve, err is for a resolver that cannot be asked.
func (p *Probe) resolve(ctx context.Context, site, name string, typ uint16) (values []string, detail string, err error) {
	server := p.Sites[site].Resolver
	if server == "" {
		if typ != dns.TypeA {
			return nil, "", drivers.Errorf(drivers.Permanent, op, "site %s has no resolver configured; the host's resolver answers A records only", site)
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, name)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Sprintf("%s does not resolve: %v", name, err), nil
		}
		return ips, "", nil
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), typ)
	cl := &dns.Client{}
	in, _, err := cl.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, "", drivers.Errorf(drivers.Unreachable, op, "site %s resolver %s: %v", site, server, err)
	}
	if in.Rcode != dns.RcodeSuccess {
		return nil, fmt.Sprintf("%s: %s from %s", name, dns.RcodeToString[in.Rcode], server), nil
	}
	for _, rr := range in.Answer {
		if rr.Header().Rrtype != typ {
			continue
		}
		switch r := rr.(type) {
		case *dns.A:
			values = append(values, r.A.String())
		case *dns.AAAA:
			values = append(values, r.AAAA.String())
		case *dns.CNAME:
			values = append(values, strings.TrimSuffix(r.Target, "."))
		default:
			f := strings.Fields(rr.String())
			values = append(values, f[len(f)-1])
		}
	}
	if len(values) == 0 {
		return nil, fmt.Sprintf("%s has no %s record at %s", name, dns.TypeToString[typ], server), nil
	}
	return values, "", nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
