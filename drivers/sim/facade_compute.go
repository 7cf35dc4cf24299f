package sim

// Nova's compute API v2.1 on the simulator's model: servers (list, show,
// create from volumes, delete), the os-start and os-stop actions, and a
// small fixed flavor catalog. Servers are the Cloud's, by site and name;
// their id is FacadeID("server", "<site>/<name>").
//
// Microversions are negotiated as Nova does: X-OpenStack-Nova-API-Version
// or OpenStack-API-Version: compute X (absent: 2.1; "latest": the max);
// outside 2.1..2.90 is 406. What changes with the version here: from 2.37
// a create must say "networks"; from 2.47 a server shows its flavor
// embedded (original_name, vcpus, ...) instead of a flavor id.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// novaMicro is a Nova microversion.
type novaMicro struct{ major, minor int }

func (m novaMicro) String() string { return fmt.Sprintf("%d.%d", m.major, m.minor) }
func (m novaMicro) less(o novaMicro) bool {
	return m.major < o.major || (m.major == o.major && m.minor < o.minor)
}

func parseNovaMicro(s string) (novaMicro, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ".")
	maj, err1 := strconv.Atoi(a)
	min, err2 := strconv.Atoi(b)
	return novaMicro{maj, min}, ok && err1 == nil && err2 == nil
}

// The facade's Nova range: a real range, so that negotiation is real.
var (
	novaMin = novaMicro{2, 1}
	novaMax = novaMicro{2, 90}
)

// novaFlavor is one of the facade's fixed flavors; its id is
// FacadeID("flavor", name). Servers the inventory made have the default.
type novaFlavor struct {
	name             string
	vcpus, ram, disk int
}

var novaFlavors = []novaFlavor{{"m1.small", 1, 2048, 20}, {"m1.medium", 2, 4096, 40}, {"m1.large", 4, 8192, 80}}

const novaDefaultFlavor = "m1.small"

func novaFlavorByRef(ref string) (novaFlavor, bool) {
	ref = ref[strings.LastIndex(ref, "/")+1:] // an id or a full URL, as Nova takes
	for _, fl := range novaFlavors {
		if ref == FacadeID("flavor", fl.name) {
			return fl, true
		}
	}
	return novaFlavor{}, false
}

// novaServerMeta is what Nova knows of a server and the model does not.
type novaServerMeta struct {
	flavor  string
	created time.Time
}

// novaServerSnap is a server as the model has it.
type novaServerSnap struct {
	name, state       string
	volumes, networks []string
}

// novaServersAt reads a site's servers; the caller holds c.mu.
func (c *Cloud) novaServersAt(site string) map[string]novaServerSnap {
	out := map[string]novaServerSnap{}
	for n, sv := range c.servers[site] {
		out[n] = novaServerSnap{name: n, state: sv.state, volumes: append([]string(nil), sv.volumes...), networks: append([]string(nil), sv.networks...)}
	}
	return out
}

// novaVolumeName maps a volume id back to the name the model knows: a
// volume (resource) or a test-failover clone; the caller holds c.mu.
func (c *Cloud) novaVolumeName(id string) (string, bool) {
	for n, r := range c.resources {
		if !r.share && FacadeID("volume", n) == id {
			return n, true
		}
	}
	for n := range c.clones {
		if FacadeID("volume", n) == id {
			return n, true
		}
	}
	return "", false
}

func novaServerID(site, name string) string { return FacadeID("server", site+"/"+name) }

func (f *cloudFacade) meta(site, name string) *novaServerMeta {
	k := site + "/" + name
	m := f.serverMeta[k]
	if m == nil {
		m = &novaServerMeta{flavor: novaDefaultFlavor, created: f.c.opts.Now().UTC()}
		f.serverMeta[k] = m
	}
	return m
}

func (f *cloudFacade) routeCompute(mux *http.ServeMux) {
	const p = "/openstack/{site}/compute/v2.1"
	f.serviceRoot(mux, cfNova, "compute", func(x *cfReq) map[string]any {
		return cfVersions(
			map[string]any{"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z", "links": cfLink(x.base() + "/v2/")},
			novaVersion(x),
		)
	})
	f.handle(mux, cfNova, "GET "+p+"/{$}", func(x *cfReq) { x.json(http.StatusOK, map[string]any{"version": novaVersion(x)}) })
	f.handle(mux, cfNova, "GET "+p+"/servers", f.listServers)
	f.handle(mux, cfNova, "GET "+p+"/servers/detail", f.listServers)
	f.handle(mux, cfNova, "GET "+p+"/servers/{id}", f.showServer)
	f.handle(mux, cfNova, "POST "+p+"/servers", f.createServer)
	f.handle(mux, cfNova, "POST "+p+"/servers/{id}/action", f.serverAction)
	f.handle(mux, cfNova, "DELETE "+p+"/servers/{id}", f.deleteServer)
	f.handle(mux, cfNova, "GET "+p+"/flavors", f.listFlavors)
	f.handle(mux, cfNova, "GET "+p+"/flavors/detail", f.listFlavors)
	f.handle(mux, cfNova, "GET "+p+"/flavors/{id}", f.showFlavor)
}

func novaVersion(x *cfReq) map[string]any {
	return map[string]any{"id": "v2.1", "status": "CURRENT", "version": novaMax.String(), "min_version": novaMin.String(),
		"updated": "2013-07-23T11:33:21Z", "links": cfLink(x.base() + "/v2.1/")}
}

// negotiate reads the requested microversion and answers it in the
// response headers; a version outside the range is 406, as Nova does.
func (x *cfReq) negotiate() bool {
	want := x.r.Header.Get("X-OpenStack-Nova-API-Version")
	if v := x.r.Header.Get("OpenStack-API-Version"); v != "" {
		if svc, ver, ok := strings.Cut(strings.TrimSpace(v), " "); ok && strings.EqualFold(svc, "compute") {
			want = ver
		}
	}
	x.micro = novaMin
	switch strings.TrimSpace(want) {
	case "":
	case "latest":
		x.micro = novaMax
	default:
		m, ok := parseNovaMicro(want)
		if !ok || m.less(novaMin) || novaMax.less(m) {
			x.fault(http.StatusNotAcceptable, "", "Version %s is not supported by the API. Minimum is %s and maximum is %s.", want, novaMin, novaMax)
			return false
		}
		x.micro = m
	}
	h := x.w.Header()
	h.Set("OpenStack-API-Version", "compute "+x.micro.String())
	h.Set("X-OpenStack-Nova-API-Version", x.micro.String())
	h.Add("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
	return true
}

// novaState maps the model's server state to Nova's status, vm_state,
// power_state (1 running, 4 shutdown, 0 no state) and task_state.
func novaState(state string) (status, vm string, power int, task any) {
	switch state {
	case drivers.ServerRunning:
		return "ACTIVE", "active", 1, nil
	case drivers.ServerStopped:
		return "SHUTOFF", "stopped", 4, nil
	case drivers.ServerBooting:
		return "BUILD", "building", 0, "spawning"
	default:
		return "ERROR", "error", 0, nil
	}
}

// servers reads the site's servers as a GET does: faults of
// compute.health apply.
func (f *cloudFacade) servers(x *cfReq) (map[string]novaServerSnap, bool) {
	const op = "compute.health"
	snaps, err := query(x.ctx(), f.c, siteCall(op, "", x.site), func(time.Time) (map[string]novaServerSnap, error) {
		if err := f.c.siteReachable(op, x.site); err != nil {
			return nil, err
		}
		return f.c.novaServersAt(x.site), nil
	})
	if err != nil {
		x.fail(err)
		return nil, false
	}
	return snaps, true
}

func (f *cloudFacade) serverView(x *cfReq, s novaServerSnap) map[string]any {
	id := novaServerID(x.site, s.name)
	m := f.meta(x.site, s.name)
	status, vm, power, task := novaState(s.state)
	fl, _ := novaFlavorByRef(FacadeID("flavor", m.flavor))
	var novaFlavorView map[string]any
	if x.micro.less(novaMicro{2, 47}) {
		novaFlavorView = map[string]any{"id": FacadeID("flavor", fl.name), "links": cfLink(x.base() + "/flavors/" + FacadeID("flavor", fl.name))}
	} else {
		novaFlavorView = map[string]any{"original_name": fl.name, "vcpus": fl.vcpus, "ram": fl.ram, "disk": fl.disk, "ephemeral": 0, "swap": 0, "extra_specs": map[string]string{}}
	}
	vols := []map[string]any{}
	for _, v := range s.volumes {
		vols = append(vols, map[string]any{"id": FacadeID("volume", v), "delete_on_termination": false})
	}
	return map[string]any{
		"id": id, "name": s.name, "status": status,
		"OS-EXT-STS:vm_state": vm, "OS-EXT-STS:power_state": power, "OS-EXT-STS:task_state": task,
		"OS-EXT-AZ:availability_zone": x.site,
		"tenant_id":                   x.project, "user_id": x.user,
		"created": cfStamp(m.created), "updated": cfStamp(x.now()),
		"addresses": f.addresses(x.site, id),
		"flavor":    novaFlavorView,
		"image":     "", // booted from a volume
		"metadata":  map[string]string{},
		"hostId":    "", "accessIPv4": "", "accessIPv6": "", "key_name": nil,
		"os-extended-volumes:volumes_attached": vols,
		"links":                                cfLink(x.base() + "/v2.1/servers/" + id),
	}
}

func (f *cloudFacade) listServers(x *cfReq) {
	snaps, ok := f.servers(x)
	if !ok {
		return
	}
	q := x.r.URL.Query()
	var nameRE *regexp.Regexp
	if n := q.Get("name"); n != "" {
		// Nova matches name as a regular expression.
		re, err := regexp.Compile(n)
		if err != nil {
			x.fault(http.StatusBadRequest, "", "Invalid filter name=%q: %v", n, err)
			return
		}
		nameRE = re
	}
	names := make([]string, 0, len(snaps))
	for n := range snaps {
		names = append(names, n)
	}
	sort.Strings(names)
	detail := strings.HasSuffix(x.r.URL.Path, "/detail")
	out := []map[string]any{}
	for _, n := range names {
		s := snaps[n]
		if nameRE != nil && !nameRE.MatchString(n) {
			continue
		}
		if st := q.Get("status"); st != "" {
			if status, _, _, _ := novaState(s.state); !strings.EqualFold(st, status) {
				continue
			}
		}
		if detail {
			out = append(out, f.serverView(x, s))
		} else {
			id := novaServerID(x.site, n)
			out = append(out, map[string]any{"id": id, "name": n, "links": cfLink(x.base() + "/v2.1/servers/" + id)})
		}
	}
	x.json(http.StatusOK, map[string]any{"servers": out})
}

// findServer finds the server of an id at the site; a miss answers 404.
func (f *cloudFacade) findServer(x *cfReq, snaps map[string]novaServerSnap) (novaServerSnap, bool) {
	id := x.r.PathValue("id")
	for n, s := range snaps {
		if novaServerID(x.site, n) == id {
			return s, true
		}
	}
	x.fault(http.StatusNotFound, "", "Instance %s could not be found.", id)
	return novaServerSnap{}, false
}

func (f *cloudFacade) showServer(x *cfReq) {
	snaps, ok := f.servers(x)
	if !ok {
		return
	}
	if s, ok := f.findServer(x, snaps); ok {
		x.json(http.StatusOK, map[string]any{"server": f.serverView(x, s)})
	}
}

// snapshot reads the site's servers for the facade's own checks (no fault).
func (f *cloudFacade) snapshot(site string) map[string]novaServerSnap {
	var snaps map[string]novaServerSnap
	f.peek(func() { snaps = f.c.novaServersAt(site) })
	return snaps
}

// serverAction runs os-stop and os-start through the Cloud. As Nova, a
// server in the wrong state is a 409: stop needs ACTIVE or ERROR, start
// needs SHUTOFF.
func (f *cloudFacade) serverAction(x *cfReq) {
	var body map[string]json.RawMessage
	if !x.decode(&body) {
		return
	}
	s, ok := f.findServer(x, f.snapshot(x.site))
	if !ok {
		return
	}
	_, vm, _, _ := novaState(s.state)
	id := novaServerID(x.site, s.name)
	var err error
	switch {
	case hasKey(body, "os-stop"):
		if s.state != drivers.ServerRunning && s.state != drivers.ServerError {
			x.fault(http.StatusConflict, "", "Cannot 'stop' instance %s while it is in vm_state %s", id, vm)
			return
		}
		err = f.c.Stop(x.ctx(), "", x.site, []string{s.name})
	case hasKey(body, "os-start"):
		if s.state != drivers.ServerStopped {
			x.fault(http.StatusConflict, "", "Cannot 'start' instance %s while it is in vm_state %s", id, vm)
			return
		}
		err = f.c.Start(x.ctx(), "", x.site, []string{s.name})
	default:
		x.fault(http.StatusBadRequest, "", "the simulator's OpenStack-API facade implements the os-start and os-stop actions only")
		return
	}
	if err != nil {
		x.fail(err)
		return
	}
	x.noContent(http.StatusAccepted)
}

func hasKey(m map[string]json.RawMessage, k string) bool { _, ok := m[k]; return ok }

// novaCreate is the part of POST /servers the facade reads.
type novaCreate struct {
	Server struct {
		Name      string          `json:"name"`
		ImageRef  string          `json:"imageRef"`
		FlavorRef string          `json:"flavorRef"`
		Networks  json.RawMessage `json:"networks"`
		BDM       []struct {
			SourceType      string `json:"source_type"`
			DestinationType string `json:"destination_type"`
			UUID            string `json:"uuid"`
			BootIndex       *int   `json:"boot_index"`
		} `json:"block_device_mapping_v2"`
	} `json:"server"`
}

// novaNIC is one network attachment of a server being created: an
// existing port to bind, or a new port (with its address) on a network.
type novaNIC struct {
	port    *neutronPort
	network string
	ips     []neutronIP
}

// createServer boots a server from existing volumes through Cloud.Boot.
// Everything is checked before the model changes; the ports are made
// after the Cloud accepted the boot, so a refused boot leaves nothing.
func (f *cloudFacade) createServer(x *cfReq) {
	var body novaCreate
	if !x.decode(&body) {
		return
	}
	s := body.Server
	if s.Name == "" {
		x.fault(http.StatusBadRequest, "", "Invalid input for field/attribute name: a server needs a name")
		return
	}
	fl, ok := novaFlavorByRef(s.FlavorRef)
	if !ok {
		x.fault(http.StatusBadRequest, "", "Flavor %s could not be found.", s.FlavorRef)
		return
	}
	if s.ImageRef != "" {
		x.fault(http.StatusBadRequest, "", "the simulator's OpenStack-API facade boots servers from existing volumes only (block_device_mapping_v2 with source_type and destination_type volume), not from image %s", s.ImageRef)
		return
	}
	if len(s.BDM) == 0 {
		x.fault(http.StatusBadRequest, "", "Block Device Mapping is Invalid: a server booted without an image needs a volume with boot_index 0")
		return
	}
	var vols []string
	var bootVol string
	var volErr error
	f.peek(func() {
		for i, b := range s.BDM {
			if b.SourceType != "volume" || b.DestinationType != "volume" {
				volErr = fmt.Errorf("Block Device Mapping is Invalid: mapping %d is %s to %s; the simulator's facade maps existing volumes only", i, b.SourceType, b.DestinationType)
				return
			}
			name, ok := f.c.novaVolumeName(b.UUID)
			if !ok {
				volErr = fmt.Errorf("Block Device Mapping is Invalid: failed to get volume %s.", b.UUID)
				return
			}
			if b.BootIndex != nil && *b.BootIndex == 0 {
				if bootVol != "" {
					volErr = fmt.Errorf("Block Device Mapping is Invalid: boot sequence for the instance and image/block device mapping combination is not valid.")
					return
				}
				bootVol = name
				continue
			}
			vols = append(vols, name)
		}
	})
	if volErr == nil && bootVol == "" {
		volErr = fmt.Errorf("Block Device Mapping is Invalid: no volume has boot_index 0")
	}
	if volErr != nil {
		x.fault(http.StatusBadRequest, "", "%v", volErr)
		return
	}
	vols = append([]string{bootVol}, vols...)

	if _, exists := f.snapshot(x.site)[s.Name]; exists {
		x.fault(http.StatusConflict, "", "the simulator holds one server per name and site: %s already exists at %s (a limit of the simulator's facade; Nova allows duplicate names)", s.Name, x.site)
		return
	}
	nics, ok := f.planNICs(x, s.Networks)
	if !ok {
		return
	}
	var netNames []string
	for _, n := range nics {
		netNames = append(netNames, n.network)
	}
	if err := f.c.Boot(x.ctx(), "", x.site, []drivers.BootSpec{{Name: s.Name, Volumes: vols, Networks: netNames}}); err != nil {
		x.fail(err)
		return
	}
	id := novaServerID(x.site, s.Name)
	f.serverMeta[x.site+"/"+s.Name] = &novaServerMeta{flavor: fl.name, created: x.now()}
	for _, n := range nics {
		if n.port != nil {
			n.port.deviceID, n.port.deviceOwner = id, "compute:"+x.site
			continue
		}
		f.addPort(x, n.network, "", id, "compute:"+x.site, n.ips, true)
	}
	x.w.Header().Set("Location", x.base()+"/v2.1/servers/"+id)
	x.json(http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": id, "links": cfLink(x.base() + "/v2.1/servers/" + id), "OS-DCF:diskConfig": "MANUAL",
		// No adminPass: as Nova with enable_instance_password off, the
		// facade hands out no guest password.
		"security_groups": []map[string]string{{"name": "default"}},
	}})
}

// planNICs reads the create's "networks": absent (an error from 2.37 on,
// as in Nova), "none", or a list of {uuid, fixed_ip} and {port}.
func (f *cloudFacade) planNICs(x *cfReq, raw json.RawMessage) ([]novaNIC, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		if !x.micro.less(novaMicro{2, 37}) {
			x.fault(http.StatusBadRequest, "", "Invalid input for field/attribute server. Value: 'networks' is a required property (microversion %s)", x.micro)
			return nil, false
		}
		return nil, true
	}
	var word string
	if json.Unmarshal(raw, &word) == nil {
		if word == "none" {
			return nil, true
		}
		x.fault(http.StatusBadRequest, "", "the simulator's OpenStack-API facade cannot allocate networks (%q): name them", word)
		return nil, false
	}
	var reqs []struct {
		UUID    string `json:"uuid"`
		Port    string `json:"port"`
		FixedIP string `json:"fixed_ip"`
	}
	if err := json.Unmarshal(raw, &reqs); err != nil {
		x.fault(http.StatusBadRequest, "", "Invalid input for field/attribute networks: %v", err)
		return nil, false
	}
	nets := f.networkNames(x.site)
	var out []novaNIC
	taken := map[string]bool{} // addresses this request already chose
	for _, q := range reqs {
		switch {
		case q.Port != "":
			p, ok := f.ports[q.Port]
			if !ok || p.site != x.site {
				x.fault(http.StatusBadRequest, "", "Port %s could not be found.", q.Port)
				return nil, false
			}
			if p.deviceID != "" {
				x.fault(http.StatusConflict, "", "Port %s is still in use.", q.Port)
				return nil, false
			}
			out = append(out, novaNIC{port: p, network: p.network})
		case q.UUID != "":
			name, ok := nets[q.UUID]
			if !ok {
				x.fault(http.StatusBadRequest, "", "Network %s could not be found.", q.UUID)
				return nil, false
			}
			ips, err := f.chooseIPs(x.site, name, []neutronIPReq{{IPAddress: q.FixedIP}}, taken)
			if err != nil {
				x.fault(err.status, "", "%s", err.msg)
				return nil, false
			}
			for _, ip := range ips {
				taken[ip.ip] = true
			}
			out = append(out, novaNIC{network: name, ips: ips})
		default:
			x.fault(http.StatusBadRequest, "", "Invalid input for field/attribute networks: each needs a uuid or a port")
			return nil, false
		}
	}
	return out, true
}

// deleteServer removes the server from the model. As Nova, it deletes the
// ports it made for the server and unbinds the ports the caller made.
func (f *cloudFacade) deleteServer(x *cfReq) {
	s, ok := f.findServer(x, f.snapshot(x.site))
	if !ok {
		return
	}
	const op = "compute.delete_server"
	_, err := mutate(x.ctx(), f.c, siteCall(op, "", x.site, s.name), func(time.Time) (struct{}, error) {
		if err := f.c.siteReachable(op, x.site); err != nil {
			return struct{}{}, err
		}
		delete(f.c.servers[x.site], s.name)
		return struct{}{}, nil
	})
	if err != nil {
		x.fail(err)
		return
	}
	delete(f.serverMeta, x.site+"/"+s.name)
	f.releasePorts(novaServerID(x.site, s.name))
	x.noContent(http.StatusNoContent)
}

func novaFlavorView(x *cfReq, fl novaFlavor) map[string]any {
	id := FacadeID("flavor", fl.name)
	return map[string]any{"id": id, "name": fl.name, "vcpus": fl.vcpus, "ram": fl.ram, "disk": fl.disk,
		"OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0, "rxtx_factor": 1.0, "os-flavor-access:is_public": true,
		"OS-FLV-DISABLED:disabled": false, "links": cfLink(x.base() + "/v2.1/flavors/" + id)}
}

func (f *cloudFacade) listFlavors(x *cfReq) {
	out := []map[string]any{}
	for _, fl := range novaFlavors {
		out = append(out, novaFlavorView(x, fl))
	}
	x.json(http.StatusOK, map[string]any{"flavors": out})
}

func (f *cloudFacade) showFlavor(x *cfReq) {
	fl, ok := novaFlavorByRef(x.r.PathValue("id"))
	if !ok {
		x.fault(http.StatusNotFound, "", "Flavor %s could not be found.", x.r.PathValue("id"))
		return
	}
	x.json(http.StatusOK, map[string]any{"flavor": novaFlavorView(x, fl)})
}
