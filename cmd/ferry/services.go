package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/codec"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/metrics"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/telemetry"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

func clientOptions(cfg config.Config, logger *slog.Logger) client.Options {
	return client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal")),
		// Tracing, when on (docs/observability.md); a worker made from
		// the client inherits it.
		Interceptors: telemetry.ClientInterceptors(),
	}
}

// dialTemporal connects to Temporal, waiting for it to come up: services
// start in any order.
func dialTemporal(ctx context.Context, cfg config.Config, logger *slog.Logger, with ...func(*client.Options)) (client.Client, error) {
	opts := clientOptions(cfg, logger)
	for _, f := range with {
		f(&opts)
	}
	if err := secureTemporal(cfg, &opts); err != nil {
		return nil, err
	}
	warned := false
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		if !warned {
			logger.Warn("waiting for Temporal", "address", cfg.TemporalAddress, "error", err)
			warned = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// registerSearchAttributes adds Ferry's search attributes to the namespace
// if they are missing, so runs can be filtered by group, site and kind.
func registerSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	want := map[string]enumspb.IndexedValueType{}
	for _, name := range workflows.SearchAttributeNames {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			want[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
	}
	if len(want) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: want})
	if err != nil {
		// Runs upsert FerryRunState, and Temporal holds a run that upserts
		// an unregistered attribute: say exactly what an admin must run.
		cmd := fmt.Sprintf("temporal operator search-attribute create --namespace %s", namespace)
		for _, name := range workflows.SearchAttributeNames {
			if _, ok := want[name]; ok {
				cmd += " --name " + name
			}
		}
		cmd += " --type Keyword"
		return fmt.Errorf("add search attributes: %w; register them as a Temporal admin: %s (docs/temporal-ui.md)", err, cmd)
	}
	return nil
}

// ensureSearchAttributes registers the missing search attributes, trying
// for up to a minute (Temporal may be restarting), and returns the last
// error if they still are not there.
func ensureSearchAttributes(ctx context.Context, c client.Client, namespace string, logger *slog.Logger) error {
	deadline := time.Now().Add(time.Minute)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := registerSearchAttributes(rctx, c, namespace)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		logger.Warn("search attributes not registered yet", "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func openStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open store at %s: %w", config.MaskURL(cfg.DatabaseURL), err)
	}
	logger.Info("store ready", "database", config.MaskURL(cfg.DatabaseURL))
	return st, nil
}

// serveHTTP serves h on addr (plain HTTP) until ctx ends, then shuts down
// gracefully. The API goes through serveAPI, which adds TLS.
func serveHTTP(ctx context.Context, addr string, h http.Handler, logger *slog.Logger, what string) error {
	return serve(ctx, addr, h, logger, what, nil)
}

// apiHandler is the API; with a payload keyring it also serves the codec
// server the Temporal UI calls, at /codec/.
func apiHandler(cfg config.Config, st *store.Store, c client.Client, keys *codec.Keyring, logger *slog.Logger, with ...func(*server.Deps)) http.Handler {
	deps := server.Deps{
		Store: st, Temporal: c, Namespace: cfg.TemporalNamespace, TaskQueue: cfg.TaskQueue,
		TemporalUIURL: cfg.TemporalUIURL, PayloadKeys: keys, Logger: logger,
		ProgressTTL: cacheTTL(cfg.ProgressTTL), TokenTTL: cacheTTL(cfg.TokenTTL),
	}
	for _, f := range with {
		f(&deps)
	}
	return telemetry.HTTPHandler(server.New(deps), "ferry-api")
}

// cacheTTL maps a FERRY_*_TTL (0: off) to server.Deps' (0: the default,
// negative: off).
func cacheTTL(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func runServer(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, _ io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("ferry server takes no arguments, got %q", args)
	}
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	// A lazy client lets the API start before Temporal; /readyz says when
	// both are reachable.
	m, err := metrics.New()
	if err != nil {
		return err
	}
	opts := clientOptions(cfg, logger)
	m.ClientOptions(&opts)
	if err := secureTemporal(cfg, &opts); err != nil {
		return err
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer c.Close()
	if err := watchState(m, st, c, cfg, logger); err != nil {
		return err
	}
	keys, err := cfg.PayloadKeys()
	if err != nil {
		return err
	}
	go func() {
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := registerSearchAttributes(rctx, c, cfg.TemporalNamespace)
			cancel()
			if err == nil {
				return
			}
			logger.Warn("search attributes not registered yet", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return serveAPI(ctx, cfg, apiHandler(cfg, st, c, keys, logger, withMetrics(m)), logger)
}

func workerOptions(cfg config.Config) worker.Options {
	return worker.Options{MaxConcurrentActivities: cfg.MaxConcurrentActivities, MaxConcurrentWorkflowTasks: cfg.MaxConcurrentWorkflowTasks,
		WorkflowTaskPollers: cfg.WorkflowTaskPollers, ActivityTaskPollers: cfg.ActivityTaskPollers,
		MaxConcurrentPerBackend: cfg.MaxConcurrentPerBackend, MaxBootsPerTier: cfg.MaxBootsPerTier}
}

// simDrivers is every port, and every optional capability, the simulator
// offers.
func simDrivers(cl *sim.Client) drivers.Set { return cl.Set() }

func runWorker(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, _ io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("ferry worker takes no arguments, got %q", args)
	}
	simURL := cfg.SimURL
	if simURL == "" {
		simURL = "http://" + cfg.SimAddr
	}
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := metrics.New()
	if err != nil {
		return err
	}
	c, err := dialTemporal(ctx, cfg, logger, m.ClientOptions)
	if err != nil {
		return err
	}
	defer c.Close()
	// Runs upsert FerryRunState, and Temporal fails (and retries for ever)
	// the workflow task of a run that upserts an unregistered attribute:
	// such a run would hold its group's lock doing nothing. So a worker
	// that cannot make sure they exist does not start; the error names the
	// command a Temporal admin runs. Runs started meanwhile wait in the
	// task queue.
	if err := ensureSearchAttributes(ctx, c, cfg.TemporalNamespace, logger); err != nil {
		return fmt.Errorf("search attributes: %w", err)
	}
	set := simDrivers(sim.NewClient(simURL, &http.Client{Timeout: 5 * time.Minute}))
	if cfg.DriversFile != "" {
		if set, err = loadDrivers(ctx, cfg.DriversFile, logger); err != nil {
			return err
		}
		logger.Info("drivers: openstack adapter and probe", "drivers_file", cfg.DriversFile)
	} else {
		logger.Info("drivers: simulator", "sim_url", simURL)
	}
	acts := &activities.Activities{Drivers: m.Instrument(set), Store: st, Runs: m}
	w := worker.New(c, cfg.TaskQueue, acts, workerOptions(cfg))
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker polling", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress)
	go ensureMonitors(ctx, c, st, cfg, logger)
	merr := serveWorkerMetrics(ctx, cfg, m, logger)
	select {
	case <-ctx.Done():
	case err = <-merr:
	}
	w.Stop()
	return err
}

// simOptions are the simulator's knobs, shared by `ferry sim` and `ferry dev`.
type simOptions struct {
	demo     bool
	boot     time.Duration
	lag      time.Duration
	workload time.Duration
}

func (o *simOptions) flags(fs *flag.FlagSet, demoDefault bool) {
	fs.BoolVar(&o.demo, "demo", demoDefault, "seed the demo inventory")
	fs.DurationVar(&o.boot, "boot-time", 2*time.Second, "how long a simulated server takes to boot")
	fs.DurationVar(&o.lag, "lag", 2*time.Second, "replication lag of every backend")
	fs.DurationVar(&o.workload, "workload-interval", 500*time.Millisecond, "how often each running server writes to its volumes (0: never)")
}

func (o simOptions) cloud(ctx context.Context) (*sim.Cloud, error) {
	cloud := sim.NewCloud(sim.Options{BootTime: o.boot, DefaultLag: o.lag, WorkloadInterval: o.workload})
	if o.demo {
		if err := cloud.LoadInventory(demo.Inventory()); err != nil {
			return nil, fmt.Errorf("seed simulator: %w", err)
		}
	}
	if o.workload > 0 {
		cloud.StartWorkload(ctx)
	}
	return cloud, nil
}

func runSim(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, _ io.Writer) error {
	var o simOptions
	fs := flag.NewFlagSet("ferry sim", flag.ContinueOnError)
	o.flags(fs, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cloud, err := o.cloud(ctx)
	if err != nil {
		return err
	}
	logger.Warn("this is a SIMULATED cloud: no real storage, servers or DNS are touched")
	return serveHTTP(ctx, cfg.SimAddr, sim.NewHandler(cloud), logger, "simulator")
}

// runDev runs everything in one process: a Temporal dev server (a child
// process, its SQLite file under the data directory), the store seeded with
// the demo, an in-process simulator, the worker and the API.
func runDev(ctx context.Context, cfg config.Config, logger *slog.Logger, args []string, stdout io.Writer) error {
	var o simOptions
	fs := flag.NewFlagSet("ferry dev", flag.ContinueOnError)
	o.flags(fs, true)
	pg := postgresDemoFlags(fs)
	osd := openstackDemoFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if pg.enabled && osd.enabled {
		return fmt.Errorf("ferry dev: --postgres and --openstack are two different demos: choose one")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Fail before touching anything when another Ferry already serves here:
	// a second dev would reseed its demo and run a worker on its simulator.
	for _, addr := range []string{cfg.HTTPAddr, cfg.SimAddr} {
		if conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond); err == nil {
			conn.Close()
			return fmt.Errorf("something already listens on %s (another `ferry dev`?): stop it first", addr)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	keys, err := cfg.PayloadKeys()
	if err != nil {
		return err
	}
	stopTemporal, err := startTemporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopTemporal()
	// One registry for everything: the API serves it on /metrics.
	m, err := metrics.New()
	if err != nil {
		return err
	}
	c, err := dialTemporal(ctx, cfg, logger, m.ClientOptions)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := registerSearchAttributes(ctx, c, cfg.TemporalNamespace); err != nil {
		return err
	}

	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	inv := demo.Inventory()
	if err := st.ApplyInventory(ctx, inv); err != nil {
		return fmt.Errorf("seed demo inventory: %w", err)
	}
	// A ready admin token, shown once in the banner below (and nowhere
	// else): every API call needs one.
	adminToken, err := devToken(ctx, st)
	if err != nil {
		return err
	}
	// The in-process simulator starts anew each time, with every group at
	// home: make the stored observed state say the same.
	for _, g := range inv.Groups {
		if err := st.SetGroupActiveSite(ctx, g.Name, ""); err != nil {
			return fmt.Errorf("reset demo group %s: %w", g.Name, err)
		}
	}

	cloud, err := o.cloud(ctx)
	if err != nil {
		return err
	}
	// With --postgres, a real PostgreSQL pair and a real DNS server join the
	// simulated cloud for the "ledger" group.
	set, stopPG, err := pg.wire(ctx, cfg, st, cloud, simDrivers(sim.NewInProcess(cloud)), stdout, logger)
	if err != nil {
		return err
	}
	defer stopPG()
	// With --openstack, the same simulated cloud is driven through the
	// OpenStack adapter and its OpenStack-API facades.
	if set, err = osd.wire(cfg.DataDir, cfg.SimAddr, inv, set, logger); err != nil {
		return err
	}
	acts := &activities.Activities{Drivers: m.Instrument(set), Store: st, Runs: m}
	w := worker.New(c, cfg.TaskQueue, acts, workerOptions(cfg))
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	if os.Getenv("FERRY_MONITOR_INTERVAL") == "" {
		// The demo's monitors report every 30 s, so replication health
		// moves while someone watches.
		cfg.MonitorInterval = 30 * time.Second
	}
	go ensureMonitors(ctx, c, st, cfg, logger)
	if err := watchState(m, st, c, cfg, logger); err != nil {
		return err
	}

	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(ctx, cfg.SimAddr, sim.NewHandler(cloud), logger, "simulator") }()
	go func() { errc <- serveAPI(ctx, cfg, apiHandler(cfg, st, c, keys, logger, withMetrics(m)), logger) }()

	api := apiScheme(cfg) + "://" + cfg.HTTPAddr
	fmt.Fprintf(stdout, `
Ferry is up, on a SIMULATED two-site cloud (demo groups: crm, shop).
  API          %s
  admin token: %s
  Temporal UI  %s/namespaces/%s/workflows
  Simulator    http://%s   (faults, ledger, state: see docs/simulator.md)
Every API call needs the token (it is new at each start). From another terminal:
  export FERRY_TOKEN=<the admin token above>
  curl -H "Authorization: Bearer $FERRY_TOKEN" %s/v1/groups
  ./bin/ferry failover shop --yes
Stop with Ctrl-C.
`, api, adminToken, cfg.TemporalUIURL, cfg.TemporalNamespace, cfg.SimAddr, api)
	if keys != nil {
		fmt.Fprintf(stdout, `Payloads are encrypted (FERRY_PAYLOAD_KEYS_FILE). The codec endpoint
  %s
needs a token, which the Temporal UI does not send by itself: the UI shows
a decode error (docs/security.md). Read a history decoded with
  %s workflow show -w WORKFLOW_ID --address %s \
    --codec-endpoint %s --codec-auth "Bearer $FERRY_TOKEN"
`, codecEndpoint(api), devserver.BinaryPath(), cfg.TemporalAddress, codecEndpoint(api))
	}
	if osd.enabled {
		fmt.Fprintf(stdout, `Storage, compute, network and DNS go through the OpenStack adapter to the
simulator's OpenStack-API facades (simulated, not real OpenStack):
  http://%s/openstack/<site>/{volume,share,compute,network,dns}/...
  adapter configuration and clouds.yaml: %s
`, cfg.SimAddr, filepath.Join(cfg.DataDir, "openstack"))
	}

	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// startTemporal starts the pinned Temporal dev server as a child process,
// unless one already answers at the configured address. It returns a stop
// function.
func startTemporal(ctx context.Context, cfg config.Config, logger *slog.Logger) (func(), error) {
	if conn, err := net.DialTimeout("tcp", cfg.TemporalAddress, time.Second); err == nil {
		conn.Close()
		logger.Info("using the Temporal server already at " + cfg.TemporalAddress)
		return func() {}, nil
	}
	bin := devserver.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("temporal dev server not found at %s: build it with `make temporal`", bin)
	}
	host, port, err := net.SplitHostPort(cfg.TemporalAddress)
	if err != nil {
		return nil, fmt.Errorf("FERRY_TEMPORAL_ADDRESS: %w", err)
	}
	uiPort := "8233"
	if _, p, err := net.SplitHostPort(trimScheme(cfg.TemporalUIURL)); err == nil {
		uiPort = p
	}
	args := append([]string{"server", "start-dev",
		"--ip", host, "--port", port, "--ui-port", uiPort,
		"--db-filename", filepath.Join(cfg.DataDir, "temporal.db"),
		"--namespace", cfg.TemporalNamespace,
		"--log-level", "warn",
	}, devserver.SearchAttributeArgs()...)
	if cfg.PayloadKeysFile != "" {
		// The UI shows sealed payloads through the API's codec server.
		args = append(args, "--ui-codec-endpoint", codecEndpoint(apiScheme(cfg)+"://"+cfg.HTTPAddr))
	}
	logPath := filepath.Join(cfg.DataDir, "temporal.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = telemetry.WithoutOTEL(os.Environ()) // Ferry's tracing is not the dev server's
	// Its own process group, so a stop reaches the server and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	logger.Info("temporal dev server started", "pid", cmd.Process.Pid, "address", cfg.TemporalAddress, "ui", cfg.TemporalUIURL, "log", logPath)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until it accepts connections, or report why it died.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if conn, err := net.DialTimeout("tcp", cfg.TemporalAddress, time.Second); err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			logFile.Close()
			return nil, fmt.Errorf("temporal dev server exited (%v); see %s", err, logPath)
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return nil, errors.New("temporal dev server did not accept connections within 2 minutes; see " + logPath)
		}
	}
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		logFile.Close()
	}, nil
}

func trimScheme(u string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(u) > len(p) && u[:len(p)] == p {
			u = u[len(p):]
		}
	}
	for i := 0; i < len(u); i++ {
		if u[i] == '/' {
			return u[:i]
		}
	}
	return u
}

// ensureMonitors starts one replication monitor per backend of the
// inventory, and again every minute so new backends get theirs; a monitor
// that runs is left alone.
func ensureMonitors(ctx context.Context, c client.Client, st *store.Store, cfg config.Config, logger *slog.Logger) {
	for {
		if err := worker.EnsureMonitors(ctx, c, st, cfg.TaskQueue, cfg.MonitorInterval); err != nil && ctx.Err() == nil {
			logger.Warn("replication monitors not started", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}
