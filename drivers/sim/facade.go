package sim

// The simulator's OpenStack-API facade: compute v2.1 (Nova), network v2.0
// (Neutron) and dns v2 (Designate), written from the OpenStack API
// reference, so that Ferry's OpenStack adapter can be driven end to end
// through gophercloud's real requests where Nova, Neutron and Designate
// cannot run. It is NOT OpenStack and says so on every response
// (X-Ferry-Facade: simulator, besides the simulator's own header).
//
// Each site is its own cloud, with its own endpoints:
//
//	/openstack/<site>/compute/        versions; v2.1/ is Nova's API
//	/openstack/<site>/network/        versions; v2.0/ is Neutron's API
//	/openstack/<site>/dns/            versions; v2/ is Designate's API
//
// The facade is noauth: it accepts any X-Auth-Token (or none), and takes
// the project from a "<user>:<project>" token, as the services' noauth does.
//
// State stays one: servers, networks, bubbles and DNS records are the
// Cloud's, changed through the Cloud's own methods (so faults, the ledger
// and a site that is down apply as to the simulator's own API). Only what
// the model has no notion of lives in the facade's small tables: subnets,
// ports and their fixed IPs, zones, flavors, creation times, tags.
//
// A site that is down does not answer: the facade drops the connection, so
// a client sees a connection-level failure, as it would from a cloud that
// is gone. Other failures of the model come back in each service's error
// shape: a permanent one as 400, a retryable one as 503.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// FacadeHeader marks every response of the OpenStack-API facade; its value
// is always "simulator".
const FacadeHeader = "X-Ferry-Facade"

const cfMark = "simulator"

// cfAPI says whose error shape a facade route answers in.
type cfAPI int

const (
	cfNova cfAPI = iota
	cfNeutron
	cfDesignate
)

// cloudFacade holds the facade-only tables of one Cloud. One mutex
// serializes facade requests: like the Cloud, it favours obviously-correct
// over fast. Lock order: cloudFacade.mu, then Cloud.mu (through the
// Cloud's methods).
type cloudFacade struct {
	c *Cloud

	mu         sync.Mutex
	serverMeta map[string]*novaServerMeta // "site/name"
	netMeta    map[string]*neutronNetMeta // "site/name"
	subnets    map[string]*neutronSubnet  // by id
	ports      map[string]*neutronPort    // by id
	portSeq    int64
	zones      map[string]*designateZone // by id; Designate's are one set for all sites
	rsCreated  map[string]time.Time      // recordset id -> first seen
	reqSeq     int64
}

func newCloudFacade(c *Cloud) *cloudFacade {
	return &cloudFacade{
		c:          c,
		serverMeta: map[string]*novaServerMeta{},
		netMeta:    map[string]*neutronNetMeta{},
		subnets:    map[string]*neutronSubnet{},
		ports:      map[string]*neutronPort{},
		zones:      map[string]*designateZone{},
		rsCreated:  map[string]time.Time{},
	}
}

// cloudFacades holds one facade state per Cloud, so that every handler of
// one Cloud (NewHandler may be called more than once, e.g. for an
// in-process client) sees the same subnets, ports and zones.
var cloudFacades sync.Map // *Cloud -> *cloudFacade

// mountCloudFacade adds the Nova, Neutron and Designate facades of every
// site to the simulator's mux.
func mountCloudFacade(mux *http.ServeMux, c *Cloud) {
	v, _ := cloudFacades.LoadOrStore(c, newCloudFacade(c))
	f := v.(*cloudFacade)
	f.routeCompute(mux)
	f.routeNetwork(mux)
	f.routeDNS(mux)
}

// cfReq is one facade request.
type cfReq struct {
	f       *cloudFacade
	w       http.ResponseWriter
	r       *http.Request
	api     cfAPI
	site    string
	project string
	user    string
	micro   novaMicro // Nova's negotiated microversion
	reqID   string
}

func (x *cfReq) ctx() context.Context { return x.r.Context() }

// now is the Cloud's clock.
func (x *cfReq) now() time.Time { return x.f.c.opts.Now().UTC() }

// base is the service root of this request's site, e.g.
// http://host/openstack/site-b/compute.
func (x *cfReq) base() string {
	scheme := "http"
	if x.r.TLS != nil {
		scheme = "https"
	}
	svc := map[cfAPI]string{cfNova: "compute", cfNeutron: "network", cfDesignate: "dns"}[x.api]
	return scheme + "://" + x.r.Host + "/openstack/" + x.site + "/" + svc
}

// handle registers one facade route: it marks the response, checks the
// site (unknown: 404; down: the connection is dropped), negotiates Nova's
// microversion, and serializes the request against the facade's tables.
func (f *cloudFacade) handle(mux *http.ServeMux, api cfAPI, pattern string, fn func(*cfReq)) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(FacadeHeader, cfMark)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reqSeq++
		x := &cfReq{f: f, w: w, r: r, api: api, site: r.PathValue("site"), user: "admin", project: "ferry-sim",
			reqID: "req-" + FacadeID("request", fmt.Sprint(f.reqSeq))}
		w.Header().Set("X-Openstack-Request-Id", x.reqID)
		// noauth: "<user>:<project>", as Nova's, Neutron's and Cinder's noauth.
		if u, p, ok := strings.Cut(r.Header.Get("X-Auth-Token"), ":"); ok && u != "" && p != "" {
			x.user, x.project = u, p
		}
		known, up := f.siteState(x.site)
		switch {
		case !known:
			x.fault(http.StatusNotFound, "SiteNotFound", "the simulator has no site %q (this is the simulator's OpenStack-API facade, not a cloud)", x.site)
			return
		case !up:
			cfDrop(w)
			return
		}
		if api == cfNova && !x.negotiate() {
			return
		}
		f.prunePorts(x.site)
		fn(x)
	})
}

// siteState reads whether the site exists and is up.
func (f *cloudFacade) siteState(name string) (known, up bool) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	s, ok := f.c.sites[name]
	return ok, ok && s.up
}

// peek runs fn on the model under the Cloud's lock, brought up to now.
// It is for the facade's own bookkeeping reads: no fault applies.
func (f *cloudFacade) peek(fn func()) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	f.c.materialize(f.c.opts.Now())
	fn()
}

// cfDrop answers nothing: the client sees the connection close, as
// from a site that is gone.
func cfDrop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// decode reads the JSON body into v; a bad body answers 400.
func (x *cfReq) decode(v any) bool {
	if err := json.NewDecoder(x.r.Body).Decode(v); err != nil {
		x.fault(http.StatusBadRequest, "BadRequest", "malformed request body: %v", err)
		return false
	}
	return true
}

// cfReadBody reads the whole request body; a failed read answers 400.
func cfReadBody(x *cfReq) ([]byte, bool) {
	data, err := io.ReadAll(x.r.Body)
	if err != nil {
		x.fault(http.StatusBadRequest, "BadRequest", "request body: %v", err)
		return nil, false
	}
	return data, true
}

// cfUnmarshal decodes data into v; bad JSON answers 400.
func cfUnmarshal(x *cfReq, data []byte, v any) bool {
	if err := json.Unmarshal(data, v); err != nil {
		x.fault(http.StatusBadRequest, "BadRequest", "malformed request body: %v", err)
		return false
	}
	return true
}

func (x *cfReq) json(status int, v any) {
	writeJSON(x.w, status, v)
}

func (x *cfReq) noContent(status int) {
	x.w.WriteHeader(status)
}

// novaFaultNames are Nova's fault keys by status (nova.api.openstack.wsgi).
var novaFaultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	501: "notImplemented", 503: "serviceUnavailable",
}

// fault answers an error in the service's own shape: Nova's
// {"itemNotFound": {"code", "message"}}, Neutron's {"NeutronError":
// {"type", "message", "detail"}}, Designate's {"code", "type", "message",
// "request_id"}.
func (x *cfReq) fault(status int, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch x.api {
	case cfNova:
		name, ok := novaFaultNames[status]
		if !ok {
			name = "computeFault"
		}
		x.json(status, map[string]any{name: map[string]any{"code": status, "message": msg}})
	case cfNeutron:
		x.json(status, map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
	default:
		x.json(status, map[string]any{"code": status, "type": typ, "message": msg, "request_id": x.reqID})
	}
}

// fail answers an error of the Cloud: unreachable drops the connection,
// permanent is the service's 400, anything else its 503.
func (x *cfReq) fail(err error) {
	var de *drivers.Error
	kind, msg := drivers.Retryable, err.Error()
	if errors.As(err, &de) {
		kind = de.Kind
		if de.Err != nil {
			msg = de.Err.Error()
		}
	}
	switch kind {
	case drivers.Unreachable:
		cfDrop(x.w)
	case drivers.Permanent:
		typ := map[cfAPI]string{cfNova: "BadRequest", cfNeutron: "BadRequest", cfDesignate: "invalid_object"}[x.api]
		x.fault(http.StatusBadRequest, typ, "%s", msg)
	default:
		typ := map[cfAPI]string{cfNova: "ServiceUnavailable", cfNeutron: "ServiceUnavailable", cfDesignate: "service_unavailable"}[x.api]
		x.fault(http.StatusServiceUnavailable, typ, "%s", msg)
	}
}

// notImplemented answers a route the facade does not serve.
func (x *cfReq) notImplemented() {
	x.fault(http.StatusNotFound, "NotFound", "the simulator's OpenStack-API facade does not implement %s %s", x.r.Method, x.r.URL.Path)
}

// cfStamp formats a time as Nova and Neutron do (RFC 3339, UTC).
func cfStamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// cfLink is an OpenStack self link.
func cfLink(href string) []map[string]string {
	return []map[string]string{{"rel": "self", "href": href}}
}

// cfVersions is a service root's versions document.
func cfVersions(versions ...map[string]any) map[string]any {
	return map[string]any{"versions": versions}
}

// serviceRoot registers the versions document at a service's root, and a
// catch-all that says what the facade does not implement.
func (f *cloudFacade) serviceRoot(mux *http.ServeMux, api cfAPI, svc string, doc func(x *cfReq) map[string]any) {
	f.handle(mux, api, "GET /openstack/{site}/"+svc+"/{$}", func(x *cfReq) {
		x.json(http.StatusOK, doc(x))
	})
	f.handle(mux, api, "/openstack/{site}/"+svc+"/", func(x *cfReq) { x.notImplemented() })
}
