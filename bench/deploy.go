package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/workflows"
)

// DeployConfig is one Ferry deployment of the bench: the real `ferry
// server` and `ferry worker` processes on a Temporal server, a fresh
// PostgreSQL database for Ferry's store, and a simulator that the bench
// serves in its own process (so it can load the inventory and the latency
// model directly).
type DeployConfig struct {
	FerryBin  string
	Temporal  client.Client // connected to Namespace at TemporalHostPort
	HostPort  string
	Namespace string
	// PGURL is the PostgreSQL server's maintenance database URL; the
	// deployment's own database is created there and dropped at Close.
	PGURL     string
	Inventory ferry.Inventory
	Latency   Latency
	Workers   int
	Dir       string   // logs
	Env       []string // more FERRY_ settings for the processes
}

// Deployment is a running Ferry.
type Deployment struct {
	API       *API
	Cloud     *sim.Cloud
	TaskQueue string
	Workers   []*Proc
	cfg       DeployConfig
	server    *Proc
	simSrv    *http.Server
	dbName    string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Deploy starts a deployment with the inventory loaded, every group at
// its primary site, the workers polling and the API ready.
func Deploy(ctx context.Context, cfg DeployConfig) (_ *Deployment, err error) {
	d := &Deployment{cfg: cfg, dbName: "ferry_bench_" + randomHex(6), TaskQueue: "bench-" + randomHex(4)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	dbURL, err := d.createDatabase(ctx)
	if err != nil {
		return nil, err
	}
	token, err := seedStore(ctx, dbURL, cfg.Inventory)
	if err != nil {
		return nil, err
	}

	d.Cloud = sim.NewCloud(cfg.Latency.SimOptions())
	if err := d.Cloud.LoadInventory(cfg.Inventory); err != nil {
		return nil, fmt.Errorf("load the simulator: %w", err)
	}
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d.simSrv = &http.Server{Handler: sim.NewHandler(d.Cloud), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.simSrv.Serve(simLn) }()

	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	env := append(os.Environ(),
		"FERRY_TEMPORAL_ADDRESS="+cfg.HostPort,
		"FERRY_TEMPORAL_NAMESPACE="+cfg.Namespace,
		"FERRY_DATABASE_URL="+dbURL,
		"FERRY_HTTP_ADDR="+apiAddr,
		"FERRY_SIM_URL=http://"+simLn.Addr().String(),
		"FERRY_TASK_QUEUE="+d.TaskQueue,
		// The replication monitors start with the workers; an hour keeps
		// their reads out of the measurement after their first.
		"FERRY_MONITOR_INTERVAL=1h",
	)
	env = append(env, cfg.Env...)
	d.API = NewAPI("http://"+apiAddr, token)

	if d.server, err = StartProc(cfg.FerryBin, []string{"server"}, env, filepath.Join(cfg.Dir, "server.log")); err != nil {
		return nil, err
	}
	for i := range max(cfg.Workers, 1) {
		w, err := StartProc(cfg.FerryBin, []string{"worker"}, env, filepath.Join(cfg.Dir, fmt.Sprintf("worker-%d.log", i+1)))
		if err != nil {
			return nil, err
		}
		d.Workers = append(d.Workers, w)
	}
	for _, w := range d.Workers {
		if err := w.WaitLog("worker polling", 2*time.Minute); err != nil {
			return nil, err
		}
	}
	if err := d.waitReady(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Deployment) createDatabase(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, d.cfg.PGURL)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL at %s: %w", d.cfg.PGURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{d.dbName}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", d.dbName, err)
	}
	u, err := url.Parse(d.cfg.PGURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + d.dbName
	return u.String(), nil
}

// seedStore applies the inventory and creates the bench's admin token, as
// an operator would once; it returns the token's secret.
func seedStore(ctx context.Context, dbURL string, inv ferry.Inventory) (string, error) {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("open the bench's store: %w", err)
	}
	defer st.Close()
	if err := st.ApplyInventory(ctx, inv); err != nil {
		return "", fmt.Errorf("apply the bench inventory: %w", err)
	}
	tok, secret, hash, err := ferry.NewToken(ferry.Token{Name: "ferry-bench", Role: ferry.RoleAdmin, CreatedBy: "ferry-bench"}, time.Now())
	if err != nil {
		return "", err
	}
	if err := st.CreateToken(ctx, tok, hash); err != nil {
		return "", fmt.Errorf("create the bench's admin token: %w", err)
	}
	return secret, nil
}

// waitReady waits for the API's /readyz and for Ferry's search attributes
// (the API registers them at start; an evacuation's children carry them).
func (d *Deployment) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		last = d.API.Do(ctx, http.MethodGet, "/readyz", nil, nil)
		if last == nil {
			var have *operatorservice.ListSearchAttributesResponse
			have, last = d.cfg.Temporal.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: d.cfg.Namespace})
			if last == nil {
				missing := slices.DeleteFunc(slices.Clone(workflows.SearchAttributeNames), func(n string) bool {
					_, ok := have.GetCustomAttributes()[n]
					return ok
				})
				if len(missing) == 0 {
					return nil
				}
				last = fmt.Errorf("search attributes %v not registered yet", missing)
			}
		}
		if !d.server.Running() {
			return fmt.Errorf("ferry server exited: %s", d.server.LogTail(2000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("ferry API never became ready: %v; server log: %s", last, d.server.LogTail(2000))
}

// WorkerSamples reads every worker's CPU and peak memory.
func (d *Deployment) WorkerSamples() ([]ProcSample, error) {
	out := make([]ProcSample, len(d.Workers))
	for i, w := range d.Workers {
		s, err := ReadProc(w.Pid())
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// Close stops the processes, the simulator and drops the database.
func (d *Deployment) Close() {
	for _, w := range d.Workers {
		w.Stop()
	}
	d.server.Stop()
	if d.simSrv != nil {
		_ = d.simSrv.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, d.cfg.PGURL); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.dbName}.Sanitize()+" WITH (FORCE)")
		conn.Close(ctx)
	}
}

var errNotCompleted = errors.New("run did not complete")
