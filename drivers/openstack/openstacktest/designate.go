package openstacktest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DesignatePackages are the Debian packages the Designate harness needs
// (bookworm's Zed: Designate 15, DNS API v2) and the BIND it drives.
const DesignatePackages = "designate-api designate-central designate-worker designate-producer designate-mdns bind9 rabbitmq-server mariadb-server"

// designateDefaultPool is the pool `designate-manage database sync`
// creates and [service:central] default_pool_id names; pools.yaml updates
// it in place so that new zones land on the private named.
const designateDefaultPool = "794ccc2c-d751-44fe-b57f-8894c9f5c842"

// Designate is a running Designate: designate-api, -central, -worker,
// -producer and -mdns, with auth_strategy = noauth, and one private BIND 9
// named as its pool's only target (bind9 backend: zones are added with
// rndc addzone as secondaries of designate-mdns, which NOTIFYs and serves
// them by AXFR).
//
// Designate's noauth middleware does not read X-Auth-Token: it takes the
// project from X-Auth-Project-ID (default "noauth-project"), the user from
// X-Auth-User-ID and the roles from X-Roles (default "admin"). Every
// request of a client that wants to see this harness's zones must carry
// X-Auth-Project-ID: ProjectID.
type Designate struct {
	// Endpoint is the DNS v2 endpoint, http://127.0.0.1:PORT/v2/: what a
	// noauth client's dns_endpoint_override holds (gophercloud's dns/v2
	// paths, "zones/...", are relative to it).
	Endpoint  string
	Root      string // http://127.0.0.1:PORT/ (the versions document)
	ProjectID string // hex, no dashes: sent as X-Auth-Project-ID
	NamedAddr string // the private named, 127.0.0.1:PORT (UDP and TCP)
	MDNSAddr  string // designate-mdns, the named's primary
	PoolID    string
	Dir       string // config, state and logs

	namedDir string // named's own directory (the bind user writes there)
	procs    runner
}

// StartDesignate starts BIND and Designate and returns once the API
// answers and a probe zone (in a project of its own, so that the test's
// project starts empty) is ACTIVE, which proves the whole chain: central,
// worker, rndc addzone on named, NOTIFY and AXFR from mdns, and the
// worker's serial poll of named. It fails the test, with the services'
// log tails, if any of that does not happen, and stops and removes
// everything at cleanup.
func StartDesignate(tb testing.TB) *Designate {
	tb.Helper()
	requireBins(tb, DesignatePackages, "designate-api", "designate-central", "designate-worker", "designate-producer", "designate-mdns", "designate-manage", "mariadb", "rabbitmqctl", "rndc")
	namedBin, err := exec.LookPath("named")
	if err != nil {
		namedBin = "/usr/sbin/named"
		if _, serr := os.Stat(namedBin); serr != nil {
			tb.Fatalf("named is not installed: apt-get install --no-install-recommends %s", DesignatePackages)
		}
	}
	start := time.Now()
	ensureMariaDB(tb)
	ensureRabbitMQ(tb)

	d := &Designate{Dir: tb.TempDir(), ProjectID: randHex(16), PoolID: designateDefaultPool}
	d.procs = runner{dir: d.Dir}
	id, dbPass := provision(tb, "ferry_designate", "utf8mb4")
	stateDirs(tb, d.Dir)
	// Registered before any process starts: cleanups run last-registered
	// first, so the processes stop before the database and vhost go.
	tb.Cleanup(d.procs.stopAll)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("designate and named logs:\n%s", d.LogTail(40))
		}
	})

	rndcConf, rndcPort := d.startNamed(tb, namedBin)

	apiPort, mdnsPort := freePort(tb), freeDNSPort(tb)
	d.Root = fmt.Sprintf("http://127.0.0.1:%d/", apiPort)
	d.Endpoint = d.Root + "v2/"
	d.MDNSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(mdnsPort))
	// The worker polls named for the zone's serial before it calls a
	// change ACTIVE; the defaults (5 s delay, 15 s between tries) are for
	// production fleets, not for one named on loopback.
	conf := fmt.Sprintf(`[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/%[1]s
state_path = %[2]s/state
rpc_response_timeout = 20
graceful_shutdown_timeout = 2
use_stderr = false

[storage:sqlalchemy]
connection = mysql+pymysql://%[1]s:%[3]s@127.0.0.1/%[1]s

[oslo_concurrency]
lock_path = %[2]s/lock

[coordination]
backend_url = file://%[2]s/state

[oslo_policy]
policy_dirs = /etc/designate/policy.d

[service:api]
listen = 127.0.0.1:%[4]d
api_base_uri = %[5]s
auth_strategy = noauth
enable_api_v2 = True
api_paste_config = /etc/designate/api-paste.ini
workers = 1

[service:central]
workers = 1
default_pool_id = %[7]s

[service:worker]
workers = 1
poll_delay = 1
poll_retry_interval = 1
poll_max_retries = 30
poll_timeout = 2

[service:producer]
workers = 1

[service:mdns]
workers = 1
listen = %[6]s
`, id, d.Dir, dbPass, apiPort, d.Root, d.MDNSAddr, d.PoolID)
	main := filepath.Join(d.Dir, "designate.conf")
	write(tb, main, conf)
	nsHost, nsPort, _ := net.SplitHostPort(d.NamedAddr)
	pools := fmt.Sprintf(`- name: default
  id: %[1]s
  description: Ferry's test pool, one private named
  attributes: {}
  ns_records:
    - hostname: ns1.designate.ferry.invalid.
      priority: 1
  nameservers:
    - host: %[2]s
      port: %[3]s
  targets:
    - type: bind9
      description: private named
      masters:
        - host: 127.0.0.1
          port: %[4]d
      options:
        host: %[2]s
        port: %[3]s
        rndc_host: 127.0.0.1
        rndc_port: %[5]d
        rndc_config_file: %[6]s
`, d.PoolID, nsHost, nsPort, mdnsPort, rndcPort, rndcConf)
	poolsFile := filepath.Join(d.Dir, "pools.yaml")
	write(tb, poolsFile, pools)

	d.manage(tb, main, "database", "sync")
	tb.Logf("designate: database, vhost, named and db sync in %s", time.Since(start).Round(100*time.Millisecond))

	for _, svc := range []string{"central", "api", "worker", "producer", "mdns"} {
		d.procs.start(tb, svc, "designate-"+svc, "--config-file", main)
	}
	// pool update asks designate-central over RPC, and a request sent
	// before central declared its queue is lost: wait until every service
	// has reported to central (GET /v2/service_statuses), then update the
	// pool and prove the chain with a probe zone.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d.waitServices(ctx, tb)
	d.manage(tb, main, "pool", "update", "--file", poolsFile)
	d.waitProbeZone(ctx, tb)
	tb.Logf("designate up at %s in %s (named %s, mdns %s)", d.Endpoint, time.Since(start).Round(100*time.Millisecond), d.NamedAddr, d.MDNSAddr)
	return d
}

// startNamed starts the pool's named: no zones, a control channel for
// Designate's rndc, and allow-new-zones so that rndc addzone works. It
// returns the rndc.conf that reaches it and the control port.
func (d *Designate) startNamed(tb testing.TB, bin string) (string, int) {
	tb.Helper()
	// Not under tb.TempDir(): named drops to the bind user, which must be
	// able to reach and write its directory, and Go makes test temp dirs
	// 0700 for root.
	dir, err := os.MkdirTemp("", "ferry-designate-named-")
	if err != nil {
		tb.Fatal(err)
	}
	d.namedDir = dir
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		tb.Fatal(err)
	}
	key := fmt.Sprintf("key \"designate\" { algorithm hmac-sha256; secret %q; };\n", base64.StdEncoding.EncodeToString(secret))
	dnsPort, rndcPort := freeDNSPort(tb), freePort(tb)
	d.NamedAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort))
	// request-ixfr no: mdns answers IXFR with a full transfer anyway;
	// allow-notify: mdns notifies from an ephemeral port.
	conf := key + fmt.Sprintf(`controls { inet 127.0.0.1 port %[2]d allow { 127.0.0.1; } keys { "designate"; }; };
options {
	directory %[1]q;
	pid-file none;
	session-keyfile none;
	listen-on port %[3]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	allow-new-zones yes;
	allow-notify { 127.0.0.1; };
	request-ixfr no;
	notify no;
};
`, dir, rndcPort, dnsPort)
	write(tb, filepath.Join(dir, "named.conf"), conf)
	rndcConf := filepath.Join(d.Dir, "rndc.conf")
	write(tb, rndcConf, key+fmt.Sprintf("options { default-key \"designate\"; default-server 127.0.0.1; default-port %d; };\n", rndcPort))
	args := []string{"-g", "-4", "-n", "1", "-c", filepath.Join(dir, "named.conf"), "-p", strconv.Itoa(dnsPort)}
	if os.Geteuid() == 0 {
		if err := chownToBind(dir); err != nil {
			tb.Fatal(err)
		}
		args = append(args, "-u", "bind")
	}
	d.procs.startPlain(tb, "named", bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = d.procs.waitUntil(ctx, 100*time.Millisecond, func() (bool, string) {
		err := runQuiet(5*time.Second, "rndc", "-c", rndcConf, "status")
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if err != nil {
		tb.Fatalf("named did not answer rndc status on 127.0.0.1:%d: %v\n%s", rndcPort, err, d.LogTail(30))
	}
	return rndcConf, rndcPort
}

// chownToBind gives named's directory to the bind user, as which named
// runs once started by root (it writes the zones rndc adds there).
func chownToBind(dir string) error {
	u, err := user.Lookup("bind")
	if err != nil {
		return fmt.Errorf("user bind is missing: apt-get install bind9")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(dir, 0o750); err != nil {
		return err
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// manage runs one designate-manage command, with its log in the logs. It
// tries three times: pool update is an RPC call to central, which a
// loaded machine may leave unanswered past rpc_response_timeout.
func (d *Designate) manage(tb testing.TB, conf string, args ...string) {
	tb.Helper()
	logf := filepath.Join(d.Dir, "log", "manage-"+args[0]+".log")
	var out []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		cmd := exec.CommandContext(ctx, "designate-manage", append([]string{"--config-file", conf, "--log-file", logf}, args...)...)
		cmd.Dir = d.Dir
		out, err = cmd.CombinedOutput()
		cancel()
		if err == nil {
			return
		}
	}
	tb.Fatalf("designate-manage %s: %v\n%s\n%s", strings.Join(args, " "), err, quietLines(strings.Split(string(out), "\n")), d.LogTail(30))
}

// CloudsYAML writes a clouds.yaml with one cloud for this Designate
// (noauth: auth_type none, the project in auth.project_id, the endpoint
// in dns_endpoint_override) and returns its path.
func (d *Designate) CloudsYAML(tb testing.TB, cloud string) string {
	tb.Helper()
	y := fmt.Sprintf(`clouds:
  %s:
    auth_type: none
    auth:
      username: admin
      project_id: %s
    dns_endpoint_override: %s
`, cloud, d.ProjectID, d.Endpoint)
	p := filepath.Join(tb.TempDir(), "clouds.yaml")
	write(tb, p, y)
	return p
}

// Do sends one request to Designate's v2 API as the admin of ProjectID
// (path is relative to Endpoint, e.g. "zones") and decodes a JSON answer
// into out when out is not nil.
func (d *Designate) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	return d.do(ctx, d.ProjectID, method, path, body, out)
}

func (d *Designate) do(ctx context.Context, project, method, path string, body, out any) (int, error) {
	h := http.Header{"X-Auth-Token": {"admin:" + project}, "X-Auth-Project-Id": {project}}
	return doJSON(ctx, method, d.Endpoint+strings.TrimPrefix(path, "/"), path, h, body, out)
}

// Zone is a Designate zone as the tests read it.
type Zone struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	TTL     int    `json:"ttl"`
	Serial  int64  `json:"serial"`
	Status  string `json:"status"`
	Action  string `json:"action"`
	Version int    `json:"version"`
	PoolID  string `json:"pool_id"`
}

// Recordset is a Designate recordset as the tests read it. TTL is nil
// when the recordset takes the zone's; UpdatedAt is nil until the first
// update.
type Recordset struct {
	ID        string   `json:"id"`
	ZoneID    string   `json:"zone_id"`
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Records   []string `json:"records"`
	TTL       *int     `json:"ttl"`
	Status    string   `json:"status"`
	Action    string   `json:"action"`
	Version   int      `json:"version"`
	UpdatedAt *string  `json:"updated_at"`
}

// CreateZone creates a primary zone in ProjectID and returns it once
// Designate reports it ACTIVE (named serves it).
func (d *Designate) CreateZone(ctx context.Context, name, email string, ttl int) (Zone, error) {
	return d.createZone(ctx, d.ProjectID, name, email, ttl)
}

func (d *Designate) createZone(ctx context.Context, project, name, email string, ttl int) (Zone, error) {
	var z Zone
	if _, err := d.do(ctx, project, http.MethodPost, "zones", map[string]any{"name": name, "email": email, "ttl": ttl}, &z); err != nil {
		return z, err
	}
	err := d.waitActive(ctx, project, "zones/"+z.ID, &z, func() string { return z.Status })
	return z, err
}

// CreateRecordset creates a recordset in a zone and returns it once
// ACTIVE.
func (d *Designate) CreateRecordset(ctx context.Context, zoneID, name, typ string, ttl int, records ...string) (Recordset, error) {
	var rs Recordset
	body := map[string]any{"name": name, "type": typ, "ttl": ttl, "records": records}
	if _, err := d.Do(ctx, http.MethodPost, "zones/"+zoneID+"/recordsets", body, &rs); err != nil {
		return rs, err
	}
	err := d.waitActive(ctx, d.ProjectID, "zones/"+zoneID+"/recordsets/"+rs.ID, &rs, func() string { return rs.Status })
	return rs, err
}

// FindRecordset reads the one recordset of a name and type in a zone.
func (d *Designate) FindRecordset(ctx context.Context, zoneID, name, typ string) (Recordset, error) {
	var r struct {
		Recordsets []Recordset `json:"recordsets"`
	}
	q := "zones/" + zoneID + "/recordsets?name=" + name + "&type=" + typ
	if _, err := d.Do(ctx, http.MethodGet, q, nil, &r); err != nil {
		return Recordset{}, err
	}
	if len(r.Recordsets) != 1 {
		return Recordset{}, fmt.Errorf("%s %s in zone %s: %d recordsets", name, typ, zoneID, len(r.Recordsets))
	}
	return r.Recordsets[0], nil
}

// WaitRecordset polls a recordset until it is ACTIVE (Designate applied
// it to named and saw named's serial catch up) and returns it.
func (d *Designate) WaitRecordset(ctx context.Context, zoneID, id string) (Recordset, error) {
	var rs Recordset
	err := d.waitActive(ctx, d.ProjectID, "zones/"+zoneID+"/recordsets/"+id, &rs, func() string { return rs.Status })
	return rs, err
}

// waitActive re-reads path into out until status() is ACTIVE; ERROR ends
// the wait at once.
func (d *Designate) waitActive(ctx context.Context, project, path string, out any, status func() string) error {
	for {
		switch s := status(); s {
		case "ACTIVE":
			return nil
		case "ERROR":
			return fmt.Errorf("%s went to ERROR", path)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still %s: %w", path, status(), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := d.do(ctx, project, http.MethodGet, path, nil, out); err != nil {
			return err
		}
	}
}

// LogTail returns the last lines of every process's log, for failure
// messages.
func (d *Designate) LogTail(lines int) string {
	logs := d.procs.logs()
	for _, extra := range []string{"manage-database.log", "manage-pool.log"} {
		logs = append(logs, filepath.Join(d.Dir, "log", extra))
	}
	return tailFiles(logs, lines, quietLines)
}

// quietLines drops oslo.policy's deprecation warnings, which every
// Designate service prints by the dozen at start and which say nothing
// about why a start failed.
func quietLines(ls []string) []string {
	out := ls[:0]
	skip := false
	for _, l := range ls {
		switch {
		case strings.Contains(l, "UserWarning: Policy"):
			skip = true
			continue
		case strings.Contains(l, "warnings.warn(deprecated_msg)"):
			skip = false
			continue
		case skip:
			continue
		}
		out = append(out, l)
	}
	return out
}

// designateServices are the services whose heartbeats must reach
// central before the harness goes on.
var designateServices = []string{"api", "central", "worker", "producer", "mdns"}

// waitServices waits until the API answers and lists every service UP.
func (d *Designate) waitServices(ctx context.Context, tb testing.TB) {
	tb.Helper()
	start := time.Now()
	err := d.procs.waitUntil(ctx, 250*time.Millisecond, func() (bool, string) {
		var r struct {
			Statuses []struct {
				Service string `json:"service_name"`
				Status  string `json:"status"`
			} `json:"service_statuses"`
		}
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := d.Do(rctx, http.MethodGet, "service_statuses", nil, &r)
		rcancel()
		if err != nil {
			return false, err.Error()
		}
		up := map[string]bool{}
		for _, s := range r.Statuses {
			up[s.Service] = s.Status == "UP"
		}
		var missing []string
		for _, s := range designateServices {
			if !up[s] {
				missing = append(missing, s)
			}
		}
		return len(missing) == 0, "not up yet: " + strings.Join(missing, ", ")
	})
	if err != nil {
		tb.Fatalf("designate services not up (%v):\n%s", err, d.LogTail(30))
	}
	tb.Logf("designate: all services up after %s", time.Since(start).Round(100*time.Millisecond))
}

// waitProbeZone creates a zone in a project of its own (the test's
// project starts empty) and waits until it is ACTIVE in the harness's
// pool.
func (d *Designate) waitProbeZone(ctx context.Context, tb testing.TB) {
	tb.Helper()
	probe := "probe-" + randHex(8)
	z, err := d.createZone(ctx, probe, probe+".ferry.invalid.", "hostmaster@ferry.invalid", 300)
	if err != nil {
		tb.Fatalf("designate's probe zone did not go ACTIVE: %v\n%s", err, d.LogTail(30))
	}
	if z.PoolID != d.PoolID {
		tb.Fatalf("probe zone landed in pool %s, want %s", z.PoolID, d.PoolID)
	}
}

// freeDNSPort returns a port that is free on 127.0.0.1 for both TCP and
// UDP right now (named and mdns need both).
func freeDNSPort(tb testing.TB) int {
	tb.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	tb.Fatal(errors.New("no port free for both TCP and UDP on 127.0.0.1"))
	return 0
}
