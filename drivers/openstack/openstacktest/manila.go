package openstacktest

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ManilaPackages are the Debian packages the Manila harness needs
// (bookworm's Zed: Manila 15, API microversions 2.0 to 2.73).
const ManilaPackages = "manila-api manila-scheduler manila-share rabbitmq-server mariadb-server"

// ManilaOptions shapes the share services. The zero value gives two
// backends, "alpha" on host "site-a" in zone "zone-a" and "bravo" on host
// "site-b" in zone "zone-b", one manila-share process each, in one
// replication domain, with the share type "ferry-replicated".
type ManilaOptions struct {
	// ServiceDownTime is how long Manila waits for a heartbeat before it
	// shows a service down (default 15s; services report every 2s).
	ServiceDownTime time.Duration
}

// ManilaBackend is one manila-share backend: its own process, host and
// availability zone (the zones stand for Ferry's two sites).
type ManilaBackend struct {
	Name string // the backend section, e.g. "alpha"
	Host string // host@backend, what replicas' host shows without #pool
	Zone string // backend_availability_zone
}

// Manila is a running Manila: manila-api, manila-scheduler and one
// manila-share per backend, with auth_strategy = noauth and Debian's
// DummyDriver (share replication of type readable, snapshots, shares from
// snapshots; no data is stored anywhere).
type Manila struct {
	// Endpoint is the shared-file-system endpoint with the project, the
	// way a noauth client wants it: http://127.0.0.1:PORT/v2/PROJECT/.
	Endpoint  string
	Root      string // http://127.0.0.1:PORT/ (the versions document)
	ProjectID string // hex, no dashes
	Token     string // X-Auth-Token for noauth: admin:<project>
	Dir       string // config, state and logs
	// ShareType is the replicated share type the harness created
	// (driver_handles_share_servers False, replication_type readable).
	ShareType string
	// ReplicationType is the replication_type of the backends and of
	// ShareType (DummyDriver reports readable).
	ReplicationType string
	Backends        []ManilaBackend
	// ServiceDownTime is Manila's service_down_time.
	ServiceDownTime time.Duration

	conf  string
	procs runner // api, scheduler, share-<backend>
}

// StartManila starts Manila and waits until GET /services shows the
// scheduler and every manila-share service up, then creates the
// replicated share type. It fails the test with what to install when a
// package is missing, and stops and removes everything at cleanup.
func StartManila(tb testing.TB, opts ManilaOptions) *Manila {
	tb.Helper()
	requireBins(tb, ManilaPackages, "manila-api", "manila-scheduler", "manila-share", "manila-manage", "mariadb", "rabbitmqctl")
	if opts.ServiceDownTime == 0 {
		opts.ServiceDownTime = 15 * time.Second
	}
	start := time.Now()
	ensureMariaDB(tb)
	ensureRabbitMQ(tb)

	m := &Manila{
		Dir:             tb.TempDir(),
		ProjectID:       randHex(16),
		ShareType:       "ferry-replicated",
		ReplicationType: "readable",
		ServiceDownTime: opts.ServiceDownTime,
		Backends: []ManilaBackend{
			{Name: "alpha", Host: "site-a@alpha", Zone: "zone-a"},
			{Name: "bravo", Host: "site-b@bravo", Zone: "zone-b"},
		},
	}
	m.Token = "admin:" + m.ProjectID
	// utf8mb3: one of Manila's migrations fails under utf8mb4 (an index
	// too long for it). SQLite is no option: migrations fail there and
	// concurrent services get "database is locked".
	id, dbPass := provision(tb, "ferry_manila", "utf8mb3")

	port := freePort(tb)
	m.Root = fmt.Sprintf("http://127.0.0.1:%d/", port)
	m.Endpoint = m.Root + "v2/" + m.ProjectID + "/"
	stateDirs(tb, m.Dir)
	var sections strings.Builder
	for _, b := range m.Backends {
		// One replication domain: the scheduler places a replica on any
		// backend of the domain but the one holding the share.
		fmt.Fprintf(&sections, `
[%s]
share_driver = manila.tests.share.drivers.dummy.DummyDriver
share_backend_name = %s
driver_handles_share_servers = False
replication_domain = ferry
backend_availability_zone = %s
dummy_driver_default_driver_method_delay = 0
dummy_driver_driver_methods_delays = ensure_share:0
`, b.Name, b.Name, b.Zone)
	}
	conf := fmt.Sprintf(`[DEFAULT]
auth_strategy = noauth
transport_url = rabbit://guest:guest@127.0.0.1:5672/%[1]s
state_path = %[2]s/state
osapi_share_listen = 127.0.0.1
osapi_share_listen_port = %[3]d
osapi_share_workers = 1
api_paste_config = /etc/manila/api-paste.ini
enabled_share_protocols = NFS,CIFS
my_ip = 127.0.0.1
report_interval = 2
service_down_time = %[5]d
periodic_interval = 2
periodic_fuzzy_delay = 0
replica_state_update_interval = 5
graceful_shutdown_timeout = 2
rpc_response_timeout = 20
use_scheduler_creating_share_from_snapshot = True
use_stderr = false

[database]
connection = mysql+pymysql://%[1]s:%[4]s@127.0.0.1/%[1]s

[oslo_concurrency]
lock_path = %[2]s/lock

[coordination]
backend_url = file://%[2]s/state
%[6]s`, id, m.Dir, port, dbPass, int(opts.ServiceDownTime.Seconds()), sections.String())
	m.conf = filepath.Join(m.Dir, "manila.conf")
	write(tb, m.conf, conf)

	m.procs = runner{dir: m.Dir}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "manila-manage", "--config-file", m.conf, "db", "sync").CombinedOutput(); err != nil {
		tb.Fatalf("manila-manage db sync: %v\n%s", err, tail(out, 40))
	}
	tb.Logf("manila: database, vhost and db sync in %s", time.Since(start).Round(100*time.Millisecond))
	tb.Cleanup(m.procs.stopAll)
	// The API logs request bodies at debug: tests read what was sent.
	apiConf := filepath.Join(m.Dir, "api.conf")
	write(tb, apiConf, "[DEFAULT]\ndebug = True\n")
	m.procs.start(tb, "api", "manila-api", "--config-file", m.conf, "--config-file", apiConf)
	m.procs.start(tb, "scheduler", "manila-scheduler", "--config-file", m.conf)
	for _, b := range m.Backends {
		site, _, _ := strings.Cut(b.Host, "@")
		f := filepath.Join(m.Dir, "share-"+b.Name+".conf")
		write(tb, f, fmt.Sprintf("[DEFAULT]\nhost = %s\nenabled_share_backends = %s\nstorage_availability_zone = %s\n", site, b.Name, b.Zone))
		m.procs.start(tb, "share-"+b.Name, "manila-share", "--config-file", m.conf, "--config-file", f)
	}
	m.waitUp(tb, 3*time.Minute) // a healthy start takes ~10 s
	m.createShareType(tb)
	tb.Logf("manila up at %s in %s (%d share services)", m.Endpoint, time.Since(start).Round(100*time.Millisecond), len(m.Backends))
	return m
}

func (m *Manila) createShareType(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := map[string]any{"share_type": map[string]any{
		"name": m.ShareType,
		"extra_specs": map[string]any{
			"driver_handles_share_servers":       false,
			"replication_type":                   m.ReplicationType,
			"snapshot_support":                   true,
			"create_share_from_snapshot_support": true,
		},
	}}
	if _, err := m.Do(ctx, http.MethodPost, "/types", "2.11", body, nil); err != nil {
		tb.Fatalf("create share type %s: %v", m.ShareType, err)
	}
}

// Backend finds a backend by its section name.
func (m *Manila) Backend(name string) ManilaBackend {
	for _, b := range m.Backends {
		if b.Name == name {
			return b
		}
	}
	panic("no manila backend " + name)
}

// CloudsYAML writes a clouds.yaml with one cloud for this Manila (noauth:
// auth_type none, the project in auth.project_id, the endpoint in
// shared_file_system_endpoint_override) and returns its path.
// shareAPIVersion, when set, caps the microversion as
// OS_SHARE_API_VERSION would.
func (m *Manila) CloudsYAML(tb testing.TB, cloud, shareAPIVersion string) string {
	tb.Helper()
	y := fmt.Sprintf(`clouds:
  %s:
    auth_type: none
    auth:
      username: admin
      project_id: %s
    shared_file_system_endpoint_override: %s
`, cloud, m.ProjectID, m.Endpoint)
	if shareAPIVersion != "" {
		y += fmt.Sprintf("    shared_file_system_api_version: %q\n", shareAPIVersion)
	}
	p := filepath.Join(tb.TempDir(), "clouds.yaml")
	write(tb, p, y)
	return p
}

// Do sends one request to Manila as the admin of the project, at the given
// microversion ("" for 2.0; below 2.56 with the experimental header, which
// the share replicas API needs there), and decodes a JSON answer into out
// when out is not nil. It returns the HTTP status, also on errors.
func (m *Manila) Do(ctx context.Context, method, path, microversion string, body, out any) (int, error) {
	h := http.Header{"X-Auth-Token": {m.Token}}
	if microversion != "" {
		h.Set("X-OpenStack-Manila-API-Version", microversion)
		h.Set("X-OpenStack-Manila-API-Experimental", "true")
	}
	return doJSON(ctx, method, strings.TrimSuffix(m.Endpoint, "/")+path, path, h, body, out)
}

// ManilaService is one row of GET /services.
type ManilaService struct {
	Binary string `json:"binary"`
	Host   string `json:"host"`
	Zone   string `json:"zone"`
	State  string `json:"state"`
	Status string `json:"status"`
}

// Services lists Manila's services (GET /services, 2.7+).
func (m *Manila) Services(ctx context.Context) ([]ManilaService, error) {
	var r struct {
		Services []ManilaService `json:"services"`
	}
	_, err := m.Do(ctx, http.MethodGet, "/services", "2.7", nil, &r)
	return r.Services, err
}

// StopShare stops the manila-share process of one backend (SIGKILL of its
// process group: a site that is lost does not shut down gracefully).
// Manila shows it down once service_down_time has passed without a
// heartbeat.
func (m *Manila) StopShare(tb testing.TB, backend string) {
	tb.Helper()
	m.procs.kill(tb, "share-"+backend)
}

// StartShare starts a stopped backend's manila-share again and waits until
// Manila shows it up.
func (m *Manila) StartShare(tb testing.TB, backend string) {
	tb.Helper()
	m.procs.resume(tb, "share-"+m.Backend(backend).Name)
	m.waitUp(tb, 2*time.Minute)
}

// LogTail returns the last lines of every service's log, for failure
// messages.
func (m *Manila) LogTail(lines int) string {
	return tailFiles(m.procs.logs(), lines, nil)
}

// Grep reports whether some service log contains s.
func (m *Manila) Grep(s string) bool { return m.procs.grep(s) }

// poolHosts are the backends (host@backend) the scheduler has pools of.
func (m *Manila) poolHosts(ctx context.Context) (map[string]bool, error) {
	var r struct {
		Pools []struct {
			Name string `json:"name"`
		} `json:"pools"`
	}
	if _, err := m.Do(ctx, http.MethodGet, "/scheduler-stats/pools", "2.7", nil, &r); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range r.Pools {
		h, _, _ := strings.Cut(p.Name, "#")
		out[h] = true
	}
	return out, nil
}

// waitUp waits until the scheduler and every running backend's
// manila-share are up, and the scheduler has each backend's pools. Manila
// counts a service up on a heartbeat newer than service_down_time, but the
// scheduler places shares only on pools whose capabilities it has received
// (a share created before finds no host in its zone).
func (m *Manila) waitUp(tb testing.TB, limit time.Duration) {
	tb.Helper()
	want := map[string]bool{}
	for _, b := range m.Backends {
		if m.procs.running("share-" + b.Name) {
			want["manila-share "+b.Host] = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// Seen on a loaded machine: every share service up and reporting its
	// pools every periodic_interval, yet the scheduler knowing only some of
	// them for minutes. A scheduler asks every share service for its
	// capabilities when it starts, so one restart is the remedy.
	nudge, nudged := time.Now().Add(limit/3), false
	err := m.procs.waitUntil(ctx, 300*time.Millisecond, func() (bool, string) {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		svcs, err := m.Services(rctx)
		if err != nil {
			return false, err.Error()
		}
		pools, perr := m.poolHosts(rctx)
		up, sched := 0, false
		for _, s := range svcs {
			if s.State != "up" {
				continue
			}
			if s.Binary == "manila-scheduler" {
				sched = true
			}
			if want[s.Binary+" "+s.Host] {
				up++
			}
		}
		known := 0
		for h := range want {
			if pools[strings.TrimPrefix(h, "manila-share ")] {
				known++
			}
		}
		if sched && up == len(want) && known == len(want) {
			return true, ""
		}
		if !nudged && time.Now().After(nudge) && up == len(want) && known < len(want) {
			nudged = true
			tb.Logf("manila: the scheduler knows %d of %d backends' pools after %s: restarting it", known, len(want), limit/3)
			m.procs.restart(tb, "scheduler")
		}
		return false, fmt.Sprintf("%d of %d share services up, scheduler up: %v, pools the scheduler knows: %d of %d (%v)", up, len(want), sched, known, len(want), perr)
	})
	if err != nil {
		tb.Fatalf("manila services not up within %s: %v\n%s", limit, err, m.LogTail(30))
	}
}
