package sim

// The block-storage (Cinder v3) and shared-file-system (Manila v2) API
// FACADES of the simulator: the subset of the real APIs that Ferry's
// OpenStack adapter uses, answered from the simulator's own model, so the
// adapter runs unchanged against a cloud whose storage holds data and can
// lose a site. They are not OpenStack: every answer carries
// X-Ferry-Facade: simulator, and nothing here is called real.
//
// Layout: every site has its own endpoints, next to facade.go's Nova,
// Neutron and Designate (whose header and connection drop they share),
//
//	/openstack/<site>/volume/                 Cinder's versions document
//	/openstack/<site>/volume/v3/<project>/... Cinder v3 (facade_cinder*.go)
//	/openstack/<site>/share/                  Manila's versions document
//	/openstack/<site>/share/v2/<project>/...  Manila v2 (facade_manila.go)
//
// A site that is down does not answer: the facade closes the connection
// without a response, so a client sees what a dead endpoint gives it (a
// transport error, not an HTTP status). So does a request whose work
// needs a backend at a site that is down (a failover to it, say).
//
// Both facades model one deployment stretched over the simulator's sites,
// one availability zone per site (named after it), with an API endpoint
// at each site that shows the whole deployment: every site's endpoint
// lists every volume, share, replica and service, and shows the services
// of a site that is down as down. That is where Cinder's replication
// (replication_device) and Manila's share replicas work: within one
// deployment, so that after a failover Nova at the DR site finds, through
// its own site's Cinder endpoint, the volume it boots from.
//
// Requests carry no idempotency keys (the real APIs have none). Each
// mutating request reaches the simulator under a key of its own, so the
// simulator applies it; repeating a request safely is the adapter's job,
// as it is against a real cloud.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// osTime is the timestamp layout of Cinder's and Manila's JSON (UTC, no
// zone), which gophercloud parses as JSONRFC3339MilliNoZ.
const osTime = "2006-01-02T15:04:05.000000"

func osStamp(t time.Time) string { return t.UTC().Format(osTime) }

// storageFacade is the state the facades keep beyond the simulator's model:
// what the real services record but the simulator has no notion of (group
// snapshots, the groups and shares a drill clones into, Cinder's record of
// which backend a volume was created on).
type storageFacade struct {
	c       *Cloud
	started time.Time

	mu          sync.Mutex
	home        map[string]string // volume -> the backend its Cinder record is on
	groupSnaps  map[string]*groupSnapRec
	cloneGroups map[string]*cloneGroupRec
	shareSnaps  map[string]*shareSnapRec
	cloneShares map[string]*cloneShareRec
}

// storageFacades holds one facade state per Cloud, so that every handler
// of one Cloud (NewHandler may be called more than once, e.g. for an
// in-process client) sees the same group snapshots and clones.
var storageFacades sync.Map // *Cloud -> *storageFacade

func storageFacadeOf(c *Cloud) *storageFacade {
	if f, ok := storageFacades.Load(c); ok {
		return f.(*storageFacade)
	}
	f, _ := storageFacades.LoadOrStore(c, &storageFacade{
		c: c, started: c.opts.Now(),
		home: map[string]string{}, groupSnaps: map[string]*groupSnapRec{}, cloneGroups: map[string]*cloneGroupRec{},
		shareSnaps: map[string]*shareSnapRec{}, cloneShares: map[string]*cloneShareRec{},
	})
	return f.(*storageFacade)
}

// mountStorageFacades serves the Cinder and Manila facades of every site
// on mux.
func mountStorageFacades(mux *http.ServeMux, c *Cloud) {
	f := storageFacadeOf(c)
	mux.Handle("/openstack/{site}/volume/", f.endpoint("volume", f.serveCinder))
	mux.Handle("/openstack/{site}/share/", f.endpoint("share", f.serveManila))
}

// osReq is one request to a facade endpoint.
type osReq struct {
	w    http.ResponseWriter
	r    *http.Request
	site string
	// root is the endpoint's URL without the API version
	// (http://host/openstack/<site>/volume/); segs the path below it.
	root string
	segs []string
	// ver is the negotiated microversion (set by the facade's router).
	ver apiVersion
	// verHeader writes the microversion header of answers.
	verHeader func(h http.Header, v apiVersion)
}

// endpoint gates one service's endpoint of a site: the header, an unknown
// site (404) and a site that is down (no answer at all).
func (f *storageFacade) endpoint(service string, serve func(*osReq)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(FacadeHeader, cfMark)
		site := r.PathValue("site")
		f.c.mu.Lock()
		s, ok := f.c.sites[site]
		up := ok && s.up
		f.c.mu.Unlock()
		q := &osReq{w: w, r: r, site: site}
		if !ok {
			q.fault(http.StatusNotFound, "The facade has no site %q.", site)
			return
		}
		if !up {
			cfDrop(w)
			return
		}
		prefix := "/openstack/" + site + "/" + service + "/"
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		q.root = scheme + "://" + r.Host + prefix
		rest := strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/")
		if rest != "" {
			q.segs = strings.Split(rest, "/")
		}
		serve(q)
	})
}

// --- answers ---------------------------------------------------------------

// faultNames are the OpenStack fault names Cinder's and Manila's WSGI
// layers give each status.
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
	405: "badMethod", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
	501: "notImplemented", 503: "serviceUnavailable",
}

// fault answers an OpenStack fault: {"badRequest": {"code": 400, "message": ...}}.
func (q *osReq) fault(code int, format string, args ...any) {
	name, ok := faultNames[code]
	if !ok {
		name = "computeFault"
	}
	q.json(code, map[string]any{name: map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}})
}

// json answers a JSON body.
func (q *osReq) json(code int, v any) {
	h := q.w.Header()
	h.Set("Content-Type", "application/json")
	if q.verHeader != nil && q.ver.major != 0 {
		q.verHeader(h, q.ver)
	}
	q.w.WriteHeader(code)
	_ = json.NewEncoder(q.w).Encode(v)
}

// empty answers a status without a body (Cinder's and Manila's 202s).
func (q *osReq) empty(code int) {
	if q.verHeader != nil && q.ver.major != 0 {
		q.verHeader(q.w.Header(), q.ver)
	}
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(code)
}

// simFault answers a simulator error: a refusal is 400 (Cinder's and
// Manila's InvalidInput, InvalidGroup, ReplicationException); a backend
// that cannot be reached drops the connection, as facade.go does for the
// other services (the storage behind the endpoint does not answer);
// anything else is 503.
func (q *osReq) simFault(err error) {
	var de *drivers.Error
	if errors.As(err, &de) {
		msg := de.Error()
		if de.Err != nil {
			msg = de.Err.Error()
		}
		switch de.Kind {
		case drivers.Permanent:
			q.fault(http.StatusBadRequest, "%s", msg)
		case drivers.Unreachable:
			cfDrop(q.w)
		default:
			q.fault(http.StatusServiceUnavailable, "%s", msg)
		}
		return
	}
	q.fault(http.StatusServiceUnavailable, "%v", err)
}

// body decodes the request's JSON body into v; a body that is not JSON is
// answered 400, as the real services do.
func (q *osReq) body(v any) bool {
	if err := json.NewDecoder(q.r.Body).Decode(v); err != nil {
		q.fault(http.StatusBadRequest, "Malformed request body: %v", err)
		return false
	}
	return true
}

// boolParam reads a query flag the way oslo's bool_from_string does.
func (q *osReq) boolParam(name string) bool {
	switch strings.ToLower(q.r.URL.Query().Get(name)) {
	case "1", "t", "true", "on", "y", "yes":
		return true
	}
	return false
}

// facadeKey is the simulator idempotency key of one facade request: new
// for every request, because the real APIs carry none.
func facadeKey(service, op string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "facade/" + service + "/" + op + "/" + hex.EncodeToString(b[:])
}

// --- microversions ---------------------------------------------------------

// apiVersion is a microversion, major.minor.
type apiVersion struct{ major, minor int }

func (v apiVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

func (v apiVersion) atLeast(o apiVersion) bool {
	return v.major > o.major || (v.major == o.major && v.minor >= o.minor)
}

func parseAPIVersion(s string) (apiVersion, bool) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 {
		return apiVersion{}, false
	}
	return apiVersion{a, b}, true
}

// negotiate reads the requested microversion: OpenStack-API-Version
// ("<service> X.Y") or the service's legacy header, the minimum when
// neither is sent, the maximum for "latest". A version out of range is
// 406, as Cinder and Manila answer it.
func (q *osReq) negotiate(service, legacy string, minV, maxV apiVersion) bool {
	raw := ""
	for _, h := range q.r.Header.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(h, ",") {
			if svc, v, ok := strings.Cut(strings.TrimSpace(part), " "); ok && strings.EqualFold(svc, service) {
				raw = strings.TrimSpace(v)
			}
		}
	}
	if raw == "" && legacy != "" {
		raw = strings.TrimSpace(q.r.Header.Get(legacy))
	}
	switch {
	case raw == "":
		q.ver = minV
	case strings.EqualFold(raw, "latest"):
		q.ver = maxV
	default:
		v, ok := parseAPIVersion(raw)
		if !ok {
			q.fault(http.StatusBadRequest, "API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", raw)
			return false
		}
		if !v.atLeast(minV) || !maxV.atLeast(v) {
			q.fault(http.StatusNotAcceptable, "Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, minV, maxV)
			return false
		}
		q.ver = v
	}
	return true
}

// notAtVersion answers what a real service answers for a call its
// negotiated microversion does not have: a bare 404.
func (q *osReq) notAtVersion() {
	q.fault(http.StatusNotFound, "The resource could not be found.")
}
