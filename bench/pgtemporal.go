package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TemporalServerVersion is the Temporal server `make bench` builds from Go
// modules for its PostgreSQL-persisted runs: the version the pinned CLI's
// dev server embeds, so both columns of the table run the same server code.
const TemporalServerVersion = "v1.29.1"

// PostgresTemporal is a Temporal server persisted in PostgreSQL, as a
// production deployment runs it: the server's own binary (go.temporal.io/
// server/cmd/server) with its default store and its SQL visibility store in
// two databases of the machine's PostgreSQL, schemas set up by its SQL tool.
type PostgresTemporal struct {
	HostPort string
	client   client.Client
	proc     *Proc
	cfg      PostgresTemporalConfig
}

// PostgresTemporalConfig says where the binaries and the database server are.
type PostgresTemporalConfig struct {
	ServerBin string // go.temporal.io/server/cmd/server
	SQLTool   string // go.temporal.io/server/cmd/tools/sql (temporal-sql-tool)
	// PGHost and PGPort reach the PostgreSQL server, user PGUser with trust
	// authentication (no password).
	PGHost string
	PGPort int
	PGUser string
	// Database and VisibilityDatabase are created anew at the start and
	// dropped at Stop.
	Database, VisibilityDatabase string
	Dir                          string // config and logs
	Namespace                    string
	// EagerActivities turns on eager activity execution.
	EagerActivities bool
}

// Client is connected to the namespace.
func (p *PostgresTemporal) Client() client.Client { return p.client }

// Stop stops the server and drops its two databases: the bench leaves
// nothing behind in the machine's PostgreSQL.
func (p *PostgresTemporal) Stop() {
	if p.client != nil {
		p.client.Close()
	}
	p.proc.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, db := range []string{p.cfg.Database, p.cfg.VisibilityDatabase} {
		_ = dropDatabase(ctx, p.cfg, db)
	}
}

// StartPostgresTemporal sets up the two databases and starts the server on
// free loopback ports, with the namespace registered.
func StartPostgresTemporal(ctx context.Context, cfg PostgresTemporalConfig) (*PostgresTemporal, error) {
	for _, b := range []string{cfg.ServerBin, cfg.SQLTool} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("temporal server binaries: %w (build them with `make bench`, which runs go install go.temporal.io/server/cmd/server@%s and .../cmd/tools/sql@%s)", err, TemporalServerVersion, TemporalServerVersion)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "config"), 0o755); err != nil {
		return nil, err
	}
	for _, db := range []struct{ name, schema string }{
		{cfg.Database, "postgresql/v12/temporal"},
		{cfg.VisibilityDatabase, "postgresql/v12/visibility"},
	} {
		if err := dropDatabase(ctx, cfg, db.name); err != nil {
			return nil, err
		}
		base := []string{"--plugin", "postgres12", "--ep", cfg.PGHost, "-p", fmt.Sprint(cfg.PGPort), "-u", cfg.PGUser, "--db", db.name}
		for _, step := range [][]string{
			{"create-database"},
			{"setup-schema", "-v", "0.0"},
			{"update-schema", "--schema-name", db.schema},
		} {
			out, err := exec.CommandContext(ctx, cfg.SQLTool, append(base, step...)...).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("temporal sql tool %s on %s: %w: %s", step[0], db.name, err, tail(string(out), 2000))
			}
		}
	}
	// The server keeps its membership ports in a smallint column: they
	// must be below 32768, where the kernel's ephemeral range does not
	// reach.
	ports, err := freePortsFrom(27233, 8)
	if err != nil {
		return nil, err
	}
	hostPort := fmt.Sprintf("127.0.0.1:%d", ports[0])
	conf := fmt.Sprintf(pgTemporalConfig,
		cfg.Database, cfg.PGHost, cfg.PGPort, cfg.PGUser,
		cfg.VisibilityDatabase, cfg.PGHost, cfg.PGPort, cfg.PGUser,
		ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7],
		hostPort, filepath.Join(cfg.Dir, "config", "dynamic.yaml"))
	if err := os.WriteFile(filepath.Join(cfg.Dir, "config", "bench.yaml"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	dynamic := pgTemporalDynamic
	if cfg.EagerActivities {
		dynamic += pgTemporalEager
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "config", "dynamic.yaml"), []byte(dynamic), 0o644); err != nil {
		return nil, err
	}
	proc, err := StartProc(cfg.ServerBin, []string{"--root", cfg.Dir, "--config", "config", "--env", "bench", "--allow-no-auth", "start"},
		nil, filepath.Join(cfg.Dir, "temporal-server.log"))
	if err != nil {
		return nil, err
	}
	p := &PostgresTemporal{HostPort: hostPort, proc: proc, cfg: cfg}
	if err := p.ready(ctx, cfg.Namespace); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w; the end of the server log: %s", err, proc.LogTail(600))
	}
	return p, nil
}

// ready waits for the frontend, registers the namespace and waits until a
// workflow can start in it (the server's namespace caches refresh on their
// own schedule).
func (p *PostgresTemporal) ready(ctx context.Context, namespace string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		nc, err := client.NewNamespaceClient(client.Options{HostPort: p.HostPort, Logger: QuietLogger{}})
		if err == nil {
			_, err = nc.Describe(ctx, namespace)
			if err != nil && strings.Contains(err.Error(), "not found") {
				err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
					Namespace: namespace, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
			}
			nc.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !p.proc.Running() {
			return fmt.Errorf("temporal server at %s never took namespace %s: %w", p.HostPort, namespace, err)
		}
		time.Sleep(time.Second)
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: p.HostPort, Namespace: namespace, Logger: QuietLogger{}})
	if err != nil {
		return fmt.Errorf("dial temporal server at %s: %w", p.HostPort, err)
	}
	p.client = c
	for i := 0; ; i++ {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bench-probe-%d", i), TaskQueue: "bench-probe"}, "bench-probe")
		if err == nil {
			_ = c.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "probe")
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s never accepted a workflow: %w", namespace, err)
		}
		time.Sleep(time.Second)
	}
}

func dropDatabase(ctx context.Context, cfg PostgresTemporalConfig, name string) error {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@%s:%d/postgres", cfg.PGUser, cfg.PGHost, cfg.PGPort))
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.PGHost, cfg.PGPort, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// freePortsFrom finds n free loopback ports from base upwards, below 32768.
func freePortsFrom(base, n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var out []int
	for p := base; p < 32768 && len(out) < n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		lns = append(lns, l)
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("no %d free loopback ports between %d and 32767", n, base)
	}
	return out, nil
}

// freePorts reserves n loopback ports and releases them for the caller.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// pgTemporalConfig is the server's development-postgres12.yaml with the
// bench's databases and ports, and without archival, metrics or pprof.
const pgTemporalConfig = `log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:
      sql:
        pluginName: "postgres12"
        databaseName: "%s"
        connectAddr: "%s:%d"
        connectProtocol: "tcp"
        user: "%s"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: "1h"
    postgres-visibility:
      sql:
        pluginName: "postgres12"
        databaseName: "%s"
        connectAddr: "%s:%d"
        connectProtocol: "tcp"
        user: "%s"
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: "1h"
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
services:
  frontend:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "%s"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "%s"
  pollInterval: "10s"
`

// pgTemporalDynamic: search attributes Ferry's API registers are usable at
// once, as on the dev server.
const pgTemporalDynamic = `limit.maxIDLength:
  - value: 255
    constraints: {}
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
    constraints: {}
`

// pgTemporalEager: a workflow task's completion hands the activities it
// schedules straight back to the worker that completed it.
const pgTemporalEager = `system.enableActivityEagerExecution:
  - value: true
    constraints: {}
`
