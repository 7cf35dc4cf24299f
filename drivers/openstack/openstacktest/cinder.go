// Package openstacktest starts real OpenStack services from Debian's
// packages for tests: plain processes under a temp dir, each on free ports
// of 127.0.0.1, each with its own database and RabbitMQ vhost, removed when
// the test ends. Nothing here is a facade.
package openstacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// CinderPackages are the Debian packages the harness needs (bookworm ships
// OpenStack Zed: Cinder 21, API microversions 3.0 to 3.70).
const CinderPackages = "cinder-api cinder-scheduler cinder-volume rabbitmq-server mariadb-server"

// CinderOptions shapes the volume services. The zero value gives one
// standalone volume service ("solo") and a two-member active-active cluster
// ("cl" with members "member-a" and "member-b"), all on the backend section
// "fake" with one replication target "dr1".
type CinderOptions struct {
	Standalone []string // hosts of unclustered cinder-volume services
	Cluster    string   // cluster name; empty with no members
	Members    []string // hosts of the cluster's cinder-volume services
	Targets    []string // replication_device backend_ids
}

// Cinder is a running Cinder: cinder-api, cinder-scheduler and the volume
// services, with auth_strategy = noauth.
type Cinder struct {
	// Endpoint is the block-storage endpoint without the project, the way
	// a noauth client wants it: http://127.0.0.1:PORT/v3/.
	Endpoint  string
	Root      string // http://127.0.0.1:PORT/ (the versions document)
	ProjectID string // hex, no dashes
	Token     string // X-Auth-Token for noauth: admin:<project>
	Dir       string // config, state and logs
	Section   string // the enabled_backends section: hosts are host@Section

	// Hosts are the standalone services (host@section), ClusterName the
	// cluster (cluster@section) and MemberHosts its members.
	Hosts       []string
	ClusterName string
	MemberHosts []string
	Targets     []string

	procs runner
}

// StartCinder starts Cinder and waits until GET /os-services shows the
// scheduler and every volume service up. It fails the test with what to
// install when a package is missing, and stops and removes everything at
// cleanup.
func StartCinder(tb testing.TB, opts CinderOptions) *Cinder {
	tb.Helper()
	if opts.Standalone == nil && opts.Cluster == "" {
		opts.Standalone = []string{"solo"}
		opts.Cluster = "cl"
		opts.Members = []string{"member-a", "member-b"}
	}
	if len(opts.Targets) == 0 {
		opts.Targets = []string{"dr1"}
	}
	requireBins(tb, CinderPackages, "cinder-api", "cinder-scheduler", "cinder-volume", "cinder-manage", "mariadb", "rabbitmqctl")
	start := time.Now()
	ensureMariaDB(tb)
	ensureRabbitMQ(tb)

	c := &Cinder{
		Dir:       tb.TempDir(),
		ProjectID: randHex(16),
		Section:   "fake",
		Targets:   opts.Targets,
	}
	c.Token = "admin:" + c.ProjectID
	id, dbPass := provision(tb, "ferry_cinder", "utf8mb4")

	port := freePort(tb)
	c.Root = fmt.Sprintf("http://127.0.0.1:%d/", port)
	c.Endpoint = c.Root + "v3/"
	stateDirs(tb, c.Dir)
	devices := make([]string, len(opts.Targets))
	for i, t := range opts.Targets {
		devices[i] = "replication_device = backend_id:" + t
	}
	conf := fmt.Sprintf(`[DEFAULT]
auth_strategy = noauth
transport_url = rabbit://guest:guest@127.0.0.1:5672/%[1]s
state_path = %[2]s/state
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = %[3]d
osapi_volume_workers = 1
api_paste_config = /etc/cinder/api-paste.ini
enabled_backends = %[5]s
my_ip = 127.0.0.1
report_interval = 3
service_down_time = 30
rpc_response_timeout = 20
graceful_shutdown_timeout = 2
use_stderr = false

[database]
connection = mysql+pymysql://%[1]s:%[4]s@127.0.0.1/%[1]s

[oslo_concurrency]
lock_path = %[2]s/lock

[coordination]
backend_url = file://%[2]s/state

[%[5]s]
volume_driver = ferry_fake_driver.FerryFakeDriver
%[6]s
`, id, c.Dir, port, dbPass, c.Section, strings.Join(devices, "\n"))
	main := filepath.Join(c.Dir, "cinder.conf")
	write(tb, main, conf)

	c.procs = runner{dir: c.Dir, env: append(os.Environ(), "PYTHONPATH="+testdataDir(tb))}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "cinder-manage", "--config-file", main, "db", "sync").CombinedOutput(); err != nil {
		tb.Fatalf("cinder-manage db sync: %v\n%s", err, out)
	}

	tb.Logf("cinder: database, vhost and db sync in %s", time.Since(start).Round(100*time.Millisecond))
	tb.Cleanup(c.procs.stopAll)
	c.procs.start(tb, "api", "cinder-api", "--config-file", main)
	c.procs.start(tb, "scheduler", "cinder-scheduler", "--config-file", main)
	volume := func(host, cluster, backendName string) {
		extra := fmt.Sprintf("[DEFAULT]\nhost = %s\n", host)
		if cluster != "" {
			extra += "cluster = " + cluster + "\n"
		}
		extra += fmt.Sprintf("[%s]\nvolume_backend_name = %s\n", c.Section, backendName)
		f := filepath.Join(c.Dir, "volume-"+host+".conf")
		write(tb, f, extra)
		c.procs.start(tb, "volume-"+host, "cinder-volume", "--config-file", main, "--config-file", f)
	}
	for _, h := range opts.Standalone {
		volume(h, "", h)
		c.Hosts = append(c.Hosts, h+"@"+c.Section)
	}
	if opts.Cluster != "" {
		c.ClusterName = opts.Cluster + "@" + c.Section
		for _, h := range opts.Members {
			volume(h, opts.Cluster, opts.Cluster)
			c.MemberHosts = append(c.MemberHosts, h+"@"+c.Section)
		}
	}
	c.waitUp(tb, 4*time.Minute) // generous on a loaded machine; a healthy start takes ~20 s
	tb.Logf("cinder up at %s in %s (%d volume services)", c.Endpoint, time.Since(start).Round(100*time.Millisecond), len(c.Hosts)+len(c.MemberHosts))
	return c
}

// BackendName is the volume_backend_name of a standalone host or of the
// cluster (their short names): a volume type's extra spec picks it.
func BackendName(hostOrCluster string) string {
	name, _, _ := strings.Cut(hostOrCluster, "@")
	return name
}

// CloudsYAML writes a clouds.yaml with one cloud for this Cinder (noauth:
// auth_type none, the project in auth.project_id, the endpoint in
// block_storage_endpoint_override) and returns its path. volumeAPIVersion,
// when set, caps the microversion as OS_VOLUME_API_VERSION would.
func (c *Cinder) CloudsYAML(tb testing.TB, cloud, region, volumeAPIVersion string) string {
	tb.Helper()
	y := fmt.Sprintf(`clouds:
  %s:
    auth_type: none
    auth:
      username: admin
      project_id: %s
    region_name: %s
    block_storage_endpoint_override: %s
`, cloud, c.ProjectID, region, c.Endpoint)
	if volumeAPIVersion != "" {
		y += fmt.Sprintf("    volume_api_version: %q\n", volumeAPIVersion)
	}
	p := filepath.Join(tb.TempDir(), "clouds.yaml")
	write(tb, p, y)
	return p
}

// Do sends one request to Cinder as the admin of the project, at the given
// microversion ("" for the base version), and decodes a JSON answer into
// out when out is not nil. Tests use it to read and prepare what the
// adapter does not (volume types, volumes).
func (c *Cinder) Do(ctx context.Context, method, path, microversion string, body, out any) (int, error) {
	h := http.Header{"X-Auth-Token": {c.Token}}
	if microversion != "" {
		h.Set("OpenStack-API-Version", "volume "+microversion)
	}
	return doJSON(ctx, method, c.Endpoint+c.ProjectID+path, path, h, body, out)
}

// Service is one row of GET /os-services as the tests read it.
// (A JSON null reads as "".)
type Service struct {
	Binary            string `json:"binary"`
	Host              string `json:"host"`
	State             string `json:"state"`
	Status            string `json:"status"`
	Cluster           string `json:"cluster"`
	ReplicationStatus string `json:"replication_status"`
	ActiveBackendID   string `json:"active_backend_id"`
	Frozen            bool   `json:"frozen"`
	DisabledReason    string `json:"disabled_reason"`
}

// Services lists the services at microversion 3.7 (with their clusters).
func (c *Cinder) Services(ctx context.Context) ([]Service, error) {
	var r struct {
		Services []Service `json:"services"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/os-services", "3.7", nil, &r)
	return r.Services, err
}

// LogTail returns the last lines of every service's log, for failure
// messages.
func (c *Cinder) LogTail(lines int) string {
	return tailFiles(c.procs.logs(), lines, nil)
}

// Grep reports whether some service log contains s (Cinder logs what its
// API accepted and then refused, e.g. an unknown backend_id).
func (c *Cinder) Grep(s string) bool { return c.procs.grep(s) }

// Count says how many times s occurs in the services' logs: how often the
// fake driver did something it logs (a failover_replication, say).
func (c *Cinder) Count(s string) int { return c.procs.count(s) }

// TargetDown makes the fake driver's secondary array backendID stop
// answering (down) or answer again: failing a group over to it then fails
// in cinder-volume, after the API has accepted the request.
func (c *Cinder) TargetDown(tb testing.TB, backendID string, down bool) {
	tb.Helper()
	p := filepath.Join(c.Dir, "state", "ferry-fake-target-down-"+backendID)
	if down {
		write(tb, p, "down\n")
		return
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
}

func (c *Cinder) waitUp(tb testing.TB, limit time.Duration) {
	tb.Helper()
	want := map[string]bool{}
	for _, h := range append(append([]string{}, c.Hosts...), c.MemberHosts...) {
		want["cinder-volume "+h] = true
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last string
	err := c.procs.waitUntil(ctx, 500*time.Millisecond, func() (bool, string) {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		svcs, err := c.Services(rctx)
		rcancel()
		if err != nil {
			last = err.Error()
			return false, last
		}
		if last == "" || strings.HasPrefix(last, "Get") {
			tb.Logf("cinder-api answers after %s", time.Since(start).Round(100*time.Millisecond))
		}
		up, sched := 0, false
		for _, s := range svcs {
			if s.State != "up" {
				continue
			}
			if s.Binary == "cinder-scheduler" {
				sched = true
			}
			if want[s.Binary+" "+s.Host] {
				up++
			}
		}
		last = fmt.Sprintf("%d of %d volume services up, scheduler up: %v", up, len(want), sched)
		return sched && up == len(want), last
	})
	if err != nil {
		tb.Fatalf("cinder services not up within %s: %v\n%s", limit, err, c.LogTail(30))
	}
}

func ensureMariaDB(tb testing.TB) {
	tb.Helper()
	if runQuiet(10*time.Second, "mariadb", "-e", "SELECT 1") == nil {
		return
	}
	_ = os.MkdirAll("/run/mysqld", 0o755)
	runQuiet(5*time.Second, "chown", "mysql:mysql", "/run/mysqld")
	if err := runQuiet(30*time.Second, "start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"); err != nil {
		tb.Fatalf("MariaDB is down and would not start (apt-get install mariadb-server): %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if runQuiet(5*time.Second, "mariadb", "-e", "SELECT 1") == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	tb.Fatalf("MariaDB did not come up within 60s of start-stop-daemon --start --exec /usr/sbin/mariadbd")
}

func ensureRabbitMQ(tb testing.TB) {
	tb.Helper()
	if runQuiet(30*time.Second, "rabbitmqctl", "-q", "status") == nil {
		return
	}
	if err := runQuiet(30*time.Second, "rabbitmq-server", "-detached"); err != nil {
		tb.Fatalf("RabbitMQ is down and would not start (apt-get install rabbitmq-server): %v", err)
	}
	if err := runQuiet(2*time.Minute, "rabbitmqctl", "await_startup"); err != nil {
		tb.Fatalf("RabbitMQ did not come up after rabbitmq-server -detached: %v", err)
	}
}

func run(tb testing.TB, limit time.Duration, name string, args ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func runQuiet(limit time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func write(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// testdataDir is this package's testdata, wherever the test runs from.
func testdataDir(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate openstacktest's testdata")
	}
	return filepath.Join(filepath.Dir(file), "testdata")
}
