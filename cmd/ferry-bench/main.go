// Command ferry-bench runs Ferry's benchmarks (`make bench`, issue 7) on
// the simulator and writes the results table to bench/results and the
// terminal: an evacuation at site scale with a latency model against the
// critical path of the same model; the same with no latency against the
// floor (a minimal Temporal workflow with the same fan-out); one group's
// failover and dry run; the API under wrk; the evacuation with two
// workers and on a Temporal server persisted in PostgreSQL.
//
// `ferry-bench floor-worker` is the floor's worker process.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydr/ferry/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "floor-worker" {
		if err := floorWorker(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "ferry-bench floor-worker:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the bench's flags.
type options struct {
	ferryBin, outDir, pgURL  string
	temporalServer, sqlTool  string
	shape                    bench.Shape
	model                    bench.Latency
	runs, groupRuns, dryRuns int
	concurrency              int
	wrkConns                 int
	wrkDuration              time.Duration
	only                     string
	postgres                 bool
	eager                    bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "ferry-cache")
	}
	tdir := filepath.Join(cache, "ferry", "temporal-server-"+bench.TemporalServerVersion)
	fs := flag.NewFlagSet("ferry-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ferryBin, "ferry", "bin/ferry", "the ferry binary to benchmark")
	fs.StringVar(&o.outDir, "out", "bench/results", "where the results table is written")
	fs.StringVar(&o.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL maintenance database (trust auth): Ferry's and Temporal's databases are made there")
	fs.StringVar(&o.temporalServer, "temporal-server", filepath.Join(tdir, "server"), "go.temporal.io/server/cmd/server binary")
	fs.StringVar(&o.sqlTool, "temporal-sql-tool", filepath.Join(tdir, "sql"), "go.temporal.io/server/cmd/tools/sql binary (temporal-sql-tool)")
	o.shape = bench.Full
	fs.IntVar(&o.shape.Groups, "groups", o.shape.Groups, "protection groups")
	fs.IntVar(&o.shape.ServersPerGroup, "servers-per-group", o.shape.ServersPerGroup, "servers per group")
	fs.IntVar(&o.shape.VolumesPerServer, "volumes-per-server", o.shape.VolumesPerServer, "volumes per server")
	fs.IntVar(&o.shape.Backends, "backends", o.shape.Backends, "replicated backend pairs")
	fs.IntVar(&o.shape.BackendsPerGroup, "backends-per-group", o.shape.BackendsPerGroup, "backends one group's volumes use")
	fs.IntVar(&o.shape.Tiers, "tiers", o.shape.Tiers, "boot tiers per group")
	fs.DurationVar(&o.model.Promote, "promote", 2*time.Second, "latency model: one promote call")
	fs.DurationVar(&o.model.Boot, "boot", 5*time.Second, "latency model: a server's boot")
	fs.DurationVar(&o.model.Health, "health", 100*time.Millisecond, "latency model: one health read")
	fs.DurationVar(&o.model.DNS, "dns", 500*time.Millisecond, "latency model: one DNS record replaced")
	fs.DurationVar(&o.model.Verify, "verify", 300*time.Millisecond, "latency model: one check")
	fs.IntVar(&o.runs, "runs", 3, "runs of each evacuation benchmark (the table shows medians)")
	fs.IntVar(&o.groupRuns, "group-runs", 5, "one-group failovers (each of another group)")
	fs.IntVar(&o.dryRuns, "dry-runs", 20, "dry runs per one-group run")
	fs.IntVar(&o.concurrency, "concurrency", 25, "groups an evacuation fails over at once (its options.concurrency)")
	fs.IntVar(&o.wrkConns, "wrk-connections", 32, "wrk connections")
	fs.DurationVar(&o.wrkDuration, "wrk-duration", 10*time.Second, "each wrk run's length")
	fs.StringVar(&o.only, "only", "", "comma-separated subset of: modeled,zero,scaleout,group,api,postgres (default all)")
	fs.BoolVar(&o.postgres, "postgres-temporal", true, "also run against a Temporal server persisted in PostgreSQL")
	fs.BoolVar(&o.eager, "eager-activities", true, "run the Temporal servers with eager activity execution (system.enableActivityEagerExecution)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.shape.Validate(); err != nil {
		return o, err
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"-runs", o.runs}, {"-group-runs", o.groupRuns}, {"-dry-runs", o.dryRuns}, {"-concurrency", o.concurrency}, {"-wrk-connections", o.wrkConns}} {
		if f.v < 1 {
			return o, fmt.Errorf("%s must be at least 1, got %d", f.name, f.v)
		}
	}
	if o.concurrency > 100 {
		return o, fmt.Errorf("-concurrency must be at most 100 (the API's bound), got %d", o.concurrency)
	}
	if o.shape.Groups < o.groupRuns+1 {
		return o, fmt.Errorf("-groups must exceed -group-runs (%d): each one-group run and the live run take a group of their own", o.groupRuns)
	}
	if o.wrkDuration < time.Second {
		return o, fmt.Errorf("-wrk-duration must be at least 1s, got %s", o.wrkDuration)
	}
	for _, part := range strings.Split(o.only, ",") {
		switch strings.TrimSpace(part) {
		case "", "modeled", "zero", "scaleout", "group", "api", "postgres":
		default:
			return o, fmt.Errorf("-only: unknown benchmark %q (one of modeled, zero, scaleout, group, api, postgres)", part)
		}
	}
	return o, nil
}

func (o options) want(name string) bool {
	if o.only == "" {
		return name != "postgres" || o.postgres
	}
	for _, part := range strings.Split(o.only, ",") {
		if strings.TrimSpace(part) == name {
			return true
		}
	}
	return false
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "ferry-bench:", err)
		return 2
	}
	if _, err := os.Stat(o.ferryBin); err != nil {
		fmt.Fprintf(stderr, "ferry-bench: %v (build it with `make build`)\n", err)
		return 2
	}
	r, err := newRunner(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "ferry-bench:", err)
		return 1
	}
	defer r.close()
	r.all(ctx)
	path, err := r.write(stdout)
	if err != nil {
		fmt.Fprintln(stderr, "ferry-bench:", err)
		return 1
	}
	fmt.Fprintln(stderr, "results written to", path)
	if len(r.report.Failures) > 0 {
		fmt.Fprintf(stderr, "ferry-bench: %d benchmark(s) failed; see the table's Failures\n", len(r.report.Failures))
		return 1
	}
	return 0
}
