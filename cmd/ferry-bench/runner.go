package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/bench"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/internal/devserver"
)

// target is a Temporal server the benchmarks run on.
type target struct {
	name     string
	c        client.Client
	hostPort string
}

type runner struct {
	o        options
	log      io.Writer
	report   *bench.Report
	inv      ferry.Inventory
	dev      *testsuite.DevServer
	pg       *bench.PostgresTemporal
	dir      string
	benchBin string
	tuning   config.Config
	started  time.Time
}

const namespace = "default"

func newRunner(ctx context.Context, o options, log io.Writer) (*runner, error) {
	inv, err := bench.Generate(o.shape)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferry-bench-")
	if err != nil {
		return nil, err
	}
	tuning, err := config.Load()
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, log: log, inv: inv, dir: dir, benchBin: self, tuning: tuning, started: time.Now().UTC(),
		report: &bench.Report{Title: "Ferry benchmarks"}}
	r.logf("logs of every process: %s", dir)
	r.logf("starting the Temporal dev server")
	if r.dev, err = startDevServer(ctx, o.eager, filepath.Join(dir, "temporal-dev.log")); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *runner) fail(what string, err error) {
	r.logf("FAILED %s: %v", what, err)
	r.report.Failures = append(r.report.Failures, fmt.Sprintf("%s: %v", what, err))
}

func (r *runner) close() {
	if r.pg != nil {
		r.pg.Stop()
	}
	if r.dev != nil {
		_ = r.dev.Stop()
	}
}

func (r *runner) devTarget() target {
	return target{name: "Temporal dev server (in-memory SQLite)", c: r.dev.Client(), hostPort: r.dev.FrontendHostPort()}
}

// all runs every benchmark asked for, in an order that keeps the slow ones
// apart from the ones measuring latency.
func (r *runner) all(ctx context.Context) {
	dev := r.devTarget()
	if r.o.want("modeled") {
		r.modeled(ctx, dev)
	}
	if r.o.want("zero") {
		r.zero(ctx, dev, 1, true, "Evacuation with zero latency: orchestration cost and the floor (dev server, 1 worker)")
	}
	if r.o.want("scaleout") {
		r.zero(ctx, dev, 2, false, "Scale-out: the zero-latency evacuation with 2 workers on one task queue (dev server)")
	}
	if r.o.want("group") || r.o.want("api") {
		r.group(ctx, dev, r.o.want("group"), r.o.want("api"))
	}
	if r.o.want("postgres") && ctx.Err() == nil {
		r.logf("starting a Temporal server %s persisted in PostgreSQL", bench.TemporalServerVersion)
		pg, err := bench.StartPostgresTemporal(ctx, bench.PostgresTemporalConfig{
			ServerBin: r.o.temporalServer, SQLTool: r.o.sqlTool,
			PGHost: "127.0.0.1", PGPort: 5432, PGUser: "postgres",
			Database: "ferry_bench_temporal", VisibilityDatabase: "ferry_bench_temporal_visibility",
			Dir: filepath.Join(r.dir, "temporal-postgres"), Namespace: namespace, EagerActivities: r.o.eager,
		})
		if err != nil {
			r.fail("Temporal server on PostgreSQL", err)
			return
		}
		r.pg = pg
		pgt := target{name: "Temporal server " + bench.TemporalServerVersion + " on PostgreSQL", c: pg.Client(), hostPort: pg.HostPort}
		r.zero(ctx, pgt, 1, true, "Evacuation with zero latency on a Temporal server persisted in PostgreSQL (1 worker)")
		r.group(ctx, pgt, true, false)
	}
}

func (r *runner) deploy(ctx context.Context, t target, l bench.Latency, workers int, name string) (*bench.Deployment, error) {
	return bench.Deploy(ctx, bench.DeployConfig{
		FerryBin: r.o.ferryBin, Temporal: t.c, HostPort: t.hostPort, Namespace: namespace,
		PGURL: r.o.pgURL, Inventory: r.inv, Latency: l, Workers: workers,
		Dir: filepath.Join(r.dir, name),
	})
}

func (r *runner) modeled(ctx context.Context, t target) {
	sec := r.report.Section("Evacuation with modelled latencies (" + t.name + ", 1 worker)")
	cp := bench.CriticalPath(r.inv.Groups, r.o.model, r.o.concurrency)
	var rtos, walls []time.Duration
	var ratios []float64
	for i := range r.o.runs {
		if ctx.Err() != nil {
			return
		}
		res, err := r.evacuate(ctx, t, r.o.model, 1, fmt.Sprintf("modeled-%d", i+1))
		if err != nil {
			r.fail(fmt.Sprintf("modelled evacuation, run %d", i+1), err)
			continue
		}
		rtos, walls = append(rtos, res.RTO), append(walls, res.Wall)
		ratios = append(ratios, res.RTO.Seconds()/cp.Seconds())
		r.logf("modelled evacuation %d/%d: RTO %s, wall %s, critical path %s", i+1, r.o.runs, bench.Secs(res.RTO), bench.Secs(res.Wall), bench.Secs(cp))
	}
	sec.Add(bench.Row{Figure: "Critical path (model, same concurrency)", Median: bench.Secs(cp)})
	sec.Add(bench.Row{Figure: "RTO (evacuation start to last group verified)", Median: bench.Secs(bench.MedianDuration(rtos)), Runs: bench.JoinDurations(rtos, bench.Secs)})
	sec.Add(bench.Row{Figure: "Wall time (workflow start to close)", Median: bench.Secs(bench.MedianDuration(walls)), Runs: bench.JoinDurations(walls, bench.Secs)})
	m := bench.Median(ratios)
	sec.Add(bench.Row{Figure: "RTO / critical path", Median: fmt.Sprintf("%.3f", m), Runs: bench.JoinFloats(ratios, "%.3f"), Goal: "<= 1.10", Met: met(len(ratios) > 0 && m <= 1.10)})
	g0 := r.inv.Groups[0]
	sec.Note("One group's critical path: %s (%s). The evacuation's is the groups' paths scheduled %d at a time, highest priority first.",
		bench.Secs(bench.GroupPath(g0, r.o.model)), r.o.model, r.o.concurrency)
}

func met(ok bool) string { return bench.Verdict(ok) }

// evacuate runs one evacuation on a fresh deployment.
func (r *runner) evacuate(ctx context.Context, t target, l bench.Latency, workers int, name string) (bench.EvacResult, error) {
	d, err := r.deploy(ctx, t, l, workers, name)
	if err != nil {
		return bench.EvacResult{}, err
	}
	defer d.Close()
	return d.Evacuate(ctx, bench.SiteA, r.o.concurrency)
}

func (r *runner) zero(ctx context.Context, t target, workers int, withFloor bool, title string) {
	sec := r.report.Section(title)
	servers := float64(r.o.shape.Servers())
	var walls, floorWalls, cpus, floorCPUs []time.Duration
	var rss, floorRSS []float64
	var wft, act, fwft, fact []float64
	for i := range r.o.runs {
		if ctx.Err() != nil {
			return
		}
		name := fmt.Sprintf("zero-%s-%dw-%d", short(t.name), workers, i+1)
		res, err := r.evacuate(ctx, t, bench.Zero, workers, name)
		if err != nil {
			r.fail(fmt.Sprintf("%s, run %d", title, i+1), err)
			continue
		}
		walls, cpus = append(walls, res.Wall), append(cpus, res.CPU)
		rss = append(rss, float64(res.PeakRSS))
		wft, act = append(wft, float64(res.Actions.WorkflowTasks)/servers), append(act, float64(res.Actions.ActivityTasks)/servers)
		r.logf("zero-latency evacuation %d/%d (%d workers): wall %s, %d workflow tasks, %d activity tasks, CPU %s",
			i+1, r.o.runs, workers, bench.Secs(res.Wall), res.Actions.WorkflowTasks, res.Actions.ActivityTasks, bench.Secs(res.CPU))
		if !withFloor {
			continue
		}
		fl, err := bench.RunFloor(ctx, bench.FloorConfig{BenchBin: r.benchBin, Temporal: t.c, HostPort: t.hostPort, Namespace: namespace,
			Workers: workers, Dir: filepath.Join(r.dir, name+"-floor")}, res.Floor)
		if err != nil {
			r.fail(fmt.Sprintf("floor, run %d", i+1), err)
			walls, cpus, rss, wft, act = walls[:len(walls)-1], cpus[:len(cpus)-1], rss[:len(rss)-1], wft[:len(wft)-1], act[:len(act)-1]
			continue
		}
		floorWalls, floorCPUs = append(floorWalls, fl.Wall), append(floorCPUs, fl.CPU)
		floorRSS = append(floorRSS, float64(fl.PeakRSS))
		fwft, fact = append(fwft, float64(fl.Actions.WorkflowTasks)/servers), append(fact, float64(fl.Actions.ActivityTasks)/servers)
		r.logf("floor %d/%d: wall %s, %d activities, %d workflow tasks, CPU %s", i+1, r.o.runs, bench.Secs(fl.Wall),
			res.Floor.Activities(), fl.Actions.WorkflowTasks, bench.Secs(fl.CPU))
	}
	sec.Add(bench.Row{Figure: "Ferry wall time (evacuation start to close)", Median: bench.Secs(bench.MedianDuration(walls)), Runs: bench.JoinDurations(walls, bench.Secs)})
	if withFloor {
		sec.Add(bench.Row{Figure: "Floor wall time (same fan-out, no-op activities)", Median: bench.Secs(bench.MedianDuration(floorWalls)), Runs: bench.JoinDurations(floorWalls, bench.Secs)})
		ratios := bench.Ratios(walls, floorWalls)
		m := bench.Median(ratios)
		sec.Add(bench.Row{Figure: "Ferry / floor, wall time (pairs run side by side)", Median: fmt.Sprintf("%.2f", m), Runs: bench.JoinFloats(ratios, "%.2f"), Goal: "<= 1.5", Met: met(len(ratios) > 0 && m <= 1.5)})
	}
	sec.Add(bench.Row{Figure: "Workflow tasks per server", Median: fmt.Sprintf("%.2f", bench.Median(wft)), Runs: bench.JoinFloats(wft, "%.2f")})
	sec.Add(bench.Row{Figure: "Activity tasks per server", Median: fmt.Sprintf("%.2f", bench.Median(act)), Runs: bench.JoinFloats(act, "%.2f")})
	if withFloor {
		sec.Add(bench.Row{Figure: "Floor: workflow tasks per server", Median: fmt.Sprintf("%.2f", bench.Median(fwft)), Runs: bench.JoinFloats(fwft, "%.2f")})
		sec.Add(bench.Row{Figure: "Floor: activity tasks per server", Median: fmt.Sprintf("%.2f", bench.Median(fact)), Runs: bench.JoinFloats(fact, "%.2f")})
	}
	what := "Worker CPU during the run"
	if workers > 1 {
		what = fmt.Sprintf("Worker CPU during the run (sum of %d workers)", workers)
	}
	sec.Add(bench.Row{Figure: what, Median: bench.Secs(bench.MedianDuration(cpus)), Runs: bench.JoinDurations(cpus, bench.Secs)})
	sec.Add(bench.Row{Figure: "Worker peak memory (VmHWM, largest worker)", Median: bench.MiB(int64(bench.Median(rss))), Runs: joinMiB(rss)})
	if withFloor {
		sec.Add(bench.Row{Figure: "Floor worker CPU during the run", Median: bench.Secs(bench.MedianDuration(floorCPUs)), Runs: bench.JoinDurations(floorCPUs, bench.Secs)})
		sec.Add(bench.Row{Figure: "Floor worker peak memory", Median: bench.MiB(int64(bench.Median(floorRSS))), Runs: joinMiB(floorRSS)})
	}
}

func joinMiB(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = bench.MiB(int64(x))
	}
	return strings.Join(parts, ", ")
}

func short(name string) string {
	if strings.Contains(name, "PostgreSQL") {
		return "pg"
	}
	return "dev"
}

func (r *runner) group(ctx context.Context, t target, group, api bool) {
	if ctx.Err() != nil {
		return
	}
	d, err := r.deploy(ctx, t, bench.Zero, 1, "group-"+short(t.name))
	if err != nil {
		r.fail("one-group deployment on "+t.name, err)
		return
	}
	defer d.Close()
	if group {
		sec := r.report.Section(fmt.Sprintf("One group: planned failover of a %d-server group, zero latency (%s)", r.o.shape.ServersPerGroup, t.name))
		var e2e, rto, dry []time.Duration
		for i := range r.o.groupRuns {
			g := bench.GroupName(i)
			for range r.o.dryRuns {
				dur, err := d.DryRun(ctx, g)
				if err != nil {
					r.fail("dry run of "+g, err)
					break
				}
				dry = append(dry, dur)
			}
			res, err := d.Failover(ctx, g, 25*time.Millisecond)
			if err != nil {
				r.fail("failover of "+g, err)
				continue
			}
			e2e, rto = append(e2e, res.EndToEnd), append(rto, res.RTO)
			r.logf("failover of %s: API call to verified %s (RTO %s)", g, bench.Millis(res.EndToEnd), bench.Millis(res.RTO))
		}
		m := bench.MedianDuration(e2e)
		sec.Add(bench.Row{Figure: "API call to verified (POST /v1/runs to GET showing completed)", Median: bench.Millis(m), Runs: bench.JoinDurations(e2e, bench.Millis), Goal: "< 2 s", Met: met(len(e2e) > 0 && m < 2*time.Second)})
		sec.Add(bench.Row{Figure: "The run's own RTO (workflow start to verified)", Median: bench.Millis(bench.MedianDuration(rto)), Runs: bench.JoinDurations(rto, bench.Millis)})
		dm := bench.MedianDuration(dry)
		sec.Add(bench.Row{Figure: fmt.Sprintf("Dry run answer (%d calls)", len(dry)), Median: bench.Millis(dm),
			Runs: fmt.Sprintf("p95 %s, max %s", bench.Millis(percentile(dry, 95)), bench.Millis(percentile(dry, 100))), Goal: "< 100 ms", Met: met(len(dry) > 0 && dm < 100*time.Millisecond)})
		sec.Note("The client polls GET /v1/runs/{id} every 25 ms, so the end-to-end time includes up to 25 ms of polling.")
	}
	if api {
		r.api(ctx, d)
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}

func (r *runner) api(ctx context.Context, d *bench.Deployment) {
	sec := r.report.Section(fmt.Sprintf("API under load: wrk, %d connections, %s per run", r.o.wrkConns, r.o.wrkDuration))
	live, err := d.LiveRun(ctx, bench.GroupName(r.o.shape.Groups-1))
	if err != nil {
		r.fail("live run for the API benchmark", err)
		return
	}
	defer func() {
		if err := d.AbortRun(context.Background(), live); err != nil {
			r.fail("abort the live run", err)
		}
	}()
	for _, ep := range []struct{ name, path string }{
		{"GET /v1/runs/{id} (live run)", "/v1/runs/" + live},
		{"GET /v1/groups", "/v1/groups"},
	} {
		var p50, p99 []time.Duration
		var rps []float64
		for i := range r.o.runs {
			l, err := bench.Wrk(ctx, d.API.Base+ep.path, r.o.wrkConns, r.o.wrkDuration, d.API.Headers())
			if err != nil {
				r.fail(ep.name, err)
				break
			}
			if l.Errors > 0 || l.StatusErrors > 0 {
				r.fail(ep.name, fmt.Errorf("run %d: %d socket errors and %d non-2xx answers of %d requests", i+1, l.Errors, l.StatusErrors, l.Requests))
			}
			p50, p99, rps = append(p50, l.P50), append(p99, l.P99), append(rps, l.RPS())
			r.logf("wrk %s: p50 %s, p99 %s, %.0f req/s", ep.name, bench.Millis(l.P50), bench.Millis(l.P99), l.RPS())
		}
		m99 := bench.MedianDuration(p99)
		sec.Add(bench.Row{Figure: ep.name + ": p50", Median: bench.Millis(bench.MedianDuration(p50)), Runs: bench.JoinDurations(p50, bench.Millis)})
		sec.Add(bench.Row{Figure: ep.name + ": p99", Median: bench.Millis(m99), Runs: bench.JoinDurations(p99, bench.Millis), Goal: "<= 50 ms", Met: met(len(p99) > 0 && m99 <= 50*time.Millisecond)})
		sec.Add(bench.Row{Figure: ep.name + ": requests/s", Median: fmt.Sprintf("%.0f", bench.Median(rps)), Runs: bench.JoinFloats(rps, "%.0f")})
	}
	sec.Note("The live run is a planned failover of %s waiting for approval: GET /v1/runs/{id} of an unfinished run asks its workflow for its progress (a Temporal query answered by the worker). wrk sends the bench's admin token as its bearer.", bench.GroupName(r.o.shape.Groups-1))
}

// write renders the report to the results file and stdout.
func (r *runner) write(stdout io.Writer) (string, error) {
	commit := gitOut("rev-parse", "--short=12", "HEAD")
	if gitOut("status", "--porcelain", "--untracked-files=no") != "" {
		commit += "-dirty"
	}
	r.report.Header = [][2]string{
		{"Machine", machine()},
		{"Date", r.started.Format(time.RFC3339) + fmt.Sprintf(" (took %s)", time.Since(r.started).Round(time.Second))},
		{"Commit", commit},
		{"Go", runtime.Version()},
		{"Site", fmt.Sprintf("%d groups, %d servers in %d tiers, %d volumes on %d backends (%d per group); generated by bench.Generate",
			r.o.shape.Groups, r.o.shape.Servers(), r.o.shape.Tiers, r.o.shape.Volumes(), r.o.shape.Backends, r.o.shape.BackendsPerGroup)},
		{"Latency model", r.o.model.String()},
		{"Evacuation", fmt.Sprintf("planned, %d groups at once; %d runs per figure (medians)", r.o.concurrency, r.o.runs)},
		{"Worker tuning", fmt.Sprintf("%d activity slots, %d workflow task slots, %d activity pollers, %d workflow task pollers; %d batch calls per backend at once, boot waves of %s",
			r.tuning.MaxConcurrentActivities, r.tuning.MaxConcurrentWorkflowTasks, r.tuning.ActivityTaskPollers, r.tuning.WorkflowTaskPollers,
			r.tuning.MaxConcurrentPerBackend, bootWaves(r.tuning.MaxBootsPerTier))},
		{"Temporal", "dev server " + devserver.Version + " (Temporal CLI, in-memory SQLite); server " + bench.TemporalServerVersion + " on PostgreSQL for its sections; " +
			eagerNote(r.o.eager)},
	}
	var buf bytes.Buffer
	r.report.Markdown(&buf)
	if err := os.MkdirAll(r.o.outDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(r.o.outDir, r.started.Format("2006-01-02")+"-"+commit+".md")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	_, err := stdout.Write(buf.Bytes())
	return path, err
}

func eagerNote(on bool) string {
	if on {
		return "eager activity execution on (system.enableActivityEagerExecution=true, as docs/benchmarks.md recommends)"
	}
	return "eager activity execution off (the server's default)"
}

// startDevServer starts the pinned dev server on free ports with Ferry's
// search attributes and, when eager, eager activity execution: a workflow
// task's completion hands the activities it schedules straight back to the
// worker, saving a dispatch each (docs/benchmarks.md).
func startDevServer(ctx context.Context, eager bool, logPath string) (*testsuite.DevServer, error) {
	bin := devserver.BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("temporal dev server not found at %s (build it with `make temporal`): %w", bin, err)
	}
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := devserver.SearchAttributeArgs()
	if eager {
		args = append(args, "--dynamic-config-value", "system.enableActivityEagerExecution=true")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dev, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: bin, LogLevel: "error", ExtraArgs: args, Stdout: log, Stderr: log,
		ClientOptions: &client.Options{Logger: bench.QuietLogger{}},
	})
	if err != nil {
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	return dev, nil
}

func bootWaves(n int) string {
	if n <= 0 {
		return "a whole tier"
	}
	return fmt.Sprint(n)
}

func gitOut(args ...string) string {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
				mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%s, %d cores%s, Linux %s (load average at the end: %s)", model, runtime.NumCPU(), mem,
		strings.TrimSpace(string(kernel)), strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
}
