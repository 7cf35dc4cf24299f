package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/probe"
	"github.com/ferrydr/ferry/drivers/rfc2136"
)

// The probe against real peers: an HTTP server, a TCP listener and BIND's
// named as the DR site's resolver.
func TestProbe(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, tcpPort, _ := net.SplitHostPort(ln.Addr().String())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	closed.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer ln.Close()

	named := rfc2136.StartTestServer(t,
		drivers.Record{Name: "app.ferry.test.", Type: "A", TTL: 60, Value: "127.0.0.1"},
		drivers.Record{Name: "www.ferry.test.", Type: "CNAME", TTL: 60, Value: "app.ferry.test."},
	)
	p := &probe.Probe{Sites: map[string]probe.Site{"site-b": {Resolver: named.Addr}}}

	cases := []struct {
		name   string
		spec   drivers.CheckSpec
		pass   bool
		detail string // a part of the failure's detail
	}{
		{"http ok", drivers.CheckSpec{Type: "http", Target: srv.URL + "/"}, true, ""},
		{"http expected status", drivers.CheckSpec{Type: "http", Target: srv.URL + "/down", Expect: "503"}, true, ""},
		{"http failing service", drivers.CheckSpec{Type: "http", Target: srv.URL + "/down"}, false, "answered 503"},
		{"http nobody listens", drivers.CheckSpec{Type: "http", Target: "http://" + closedAddr + "/"}, false, "refused"},
		{"tcp by name via the site's resolver", drivers.CheckSpec{Type: "tcp", Target: "app.ferry.test:" + tcpPort}, true, ""},
		{"tcp closed port", drivers.CheckSpec{Type: "tcp", Target: closedAddr}, false, "refused"},
		{"tcp unknown name", drivers.CheckSpec{Type: "tcp", Target: "nope.ferry.test:" + tcpPort}, false, "NXDOMAIN"},
		{"dns A with expect", drivers.CheckSpec{Type: "dns", Target: "app.ferry.test", Expect: "127.0.0.1"}, true, ""},
		{"dns A moved elsewhere", drivers.CheckSpec{Type: "dns", Target: "app.ferry.test", Expect: "10.0.0.9"}, false, "resolves to 127.0.0.1, want 10.0.0.9"},
		{"dns CNAME", drivers.CheckSpec{Type: "dns", Target: "CNAME:www.ferry.test", Expect: "app.ferry.test"}, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Name = c.name
			res, err := p.Check(ctx, "site-b", "", c.spec)
			require.NoError(t, err)
			require.Equal(t, c.pass, res.Passed, res.Detail)
			require.Contains(t, res.Detail, c.detail)
		})
	}

	refusals := []struct {
		name    string
		network string
		spec    drivers.CheckSpec
		want    string
	}{
		{"inside a bubble", "bubble-1", drivers.CheckSpec{Type: "http", Target: srv.URL}, "outside network"},
		{"sql is not the probe's", "", drivers.CheckSpec{Type: "sql", Target: "db"}, "not \"sql\""},
		{"bad expect", "", drivers.CheckSpec{Type: "http", Target: srv.URL, Expect: "ok"}, "not an HTTP status"},
		{"not a URL", "", drivers.CheckSpec{Type: "http", Target: "ftp://x"}, "not an http(s) URL"},
		{"tcp without port", "", drivers.CheckSpec{Type: "tcp", Target: "app.ferry.test"}, "not host:port"},
		{"no resolver for MX", "", drivers.CheckSpec{Type: "dns", Target: "MX:ferry.test"}, "no resolver configured"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			r.spec.Name = r.name
			site := "site-b"
			if strings.Contains(r.want, "no resolver") {
				site = "site-a"
			}
			_, err := p.Check(ctx, site, r.network, r.spec)
			require.Error(t, err)
			require.True(t, drivers.IsPermanent(err), "%v", err)
			require.Contains(t, err.Error(), r.want)
		})
	}

	t.Run("resolver down is unreachable", func(t *testing.T) {
		down := &probe.Probe{Sites: map[string]probe.Site{"site-b": {Resolver: closedAddr}}, Timeout: 1e9}
		_, err := down.Check(ctx, "site-b", "", drivers.CheckSpec{Name: "dns", Type: "dns", Target: "app.ferry.test"})
		require.Error(t, err)
		require.Equal(t, drivers.Unreachable, drivers.Kind(err), "%v", err)
	})
}
