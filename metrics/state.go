package metrics

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/workflows"
)

// StateSource is what the state collector reads of the store.
type StateSource interface {
	CountRuns(ctx context.Context) ([]store.RunCount, error)
	UnfinishedRuns(ctx context.Context, limit int) ([]ferry.Run, error)
	ReplicaLags(ctx context.Context) ([]store.ReplicaLag, error)
	GroupsObserved(ctx context.Context) ([]store.GroupObserved, error)
	CountEvents(ctx context.Context) ([]store.EventCount, error)
}

// StateOptions tune the state collector; zero values take the defaults.
type StateOptions struct {
	// Temporal answers the progress query of unfinished runs (their live
	// state: paused, waiting for approval). Nil: the recorded state.
	Temporal client.Client
	// MonitorInterval is the replication monitors' interval, exported so
	// an alert can count missed reports (0: the monitor's default).
	MonitorInterval time.Duration
	// TTL is how long one reading of the store serves scrapes (default
	// 10 s): two Prometheus servers, or a scrape and a retry, cost one.
	TTL time.Duration
	// MaxLiveRuns bounds the unfinished runs whose progress one reading
	// queries (default 200); the others count under their recorded state.
	MaxLiveRuns int
	Logger      *slog.Logger
}

// WatchState makes the registry export what the store says, read when
// Prometheus scrapes: the API process does this. The state is the store's,
// shared by every worker and API replica, so it is right whichever
// process is scraped and survives restarts; a worker's own gauges would
// go stale as soon as another worker observed the same replicas.
func (r *Registry) WatchState(src StateSource, o StateOptions) error {
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.MaxLiveRuns <= 0 {
		o.MaxLiveRuns = 200
	}
	if o.MonitorInterval <= 0 {
		o.MonitorInterval = workflows.DefaultMonitorInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := newStateCollector(src, o)
	if err := r.register(c.errors); err != nil {
		return err
	}
	return r.register(c)
}

var (
	descRuns = prometheus.NewDesc("ferry_runs",
		"Runs by kind and state: final states from the run records, live states (running, paused, waiting_approval) from the workflows of unfinished runs.",
		[]string{"kind", "state"}, nil)
	descPaused = prometheus.NewDesc("ferry_run_paused_seconds",
		"How long the longest-paused unfinished run of a kind and group has been paused (by an operator, or on a failed step awaiting a decision); group is empty for runs of no group.",
		[]string{"kind", "group"}, nil)
	descLag = prometheus.NewDesc("ferry_replica_lag_seconds",
		"Replication lag of each non-active replica, as its monitor last observed it.",
		[]string{"group", "resource", "site"}, nil)
	descCompliant = prometheus.NewDesc("ferry_replica_rpo_compliant",
		"1 when a non-active replica's last observed lag is within its group's RPO and it is not in error, else 0.",
		[]string{"group", "resource", "site"}, nil)
	descRPO = prometheus.NewDesc("ferry_group_rpo_seconds",
		"Each group's recovery point objective (0: none set).",
		[]string{"group"}, nil)
	descLastReport = prometheus.NewDesc("ferry_monitor_last_report_timestamp_seconds",
		"When a group's replicas were last observed by a replication monitor (Unix time).",
		[]string{"group"}, nil)
	descInterval = prometheus.NewDesc("ferry_monitor_interval_seconds",
		"The replication monitors' configured interval.", nil, nil)
	descEvents = prometheus.NewDesc("ferry_rpo_violation_events_total",
		"Replication events raised by the monitors, by group and severity (warning: lag past 2x the RPO; critical: past 3x or in error; resolved).",
		[]string{"group", "severity"}, nil)
)

type stateCollector struct {
	src    StateSource
	o      StateOptions
	now    func() time.Time
	errors *prometheus.CounterVec

	mu   sync.Mutex
	at   time.Time
	snap []prometheus.Metric
	// firstPaused remembers when this process first saw a run paused,
	// for a pause whose start the record does not show.
	firstPaused map[string]time.Time
}

func newStateCollector(src StateSource, o StateOptions) *stateCollector {
	c := &stateCollector{
		src: src, o: o, now: time.Now, firstPaused: map[string]time.Time{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_metrics_read_errors_total",
			Help: "Reads of the store (or of a run's progress) for metrics that failed, by source; the series they feed are left out of that scrape.",
		}, []string{"source"}),
	}
	// Every source at 0 from the start, so increase() sees the first error.
	for _, s := range []string{"runs", "replicas", "events", "progress"} {
		c.errors.WithLabelValues(s)
	}
	return c
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuns, descPaused, descLag, descCompliant, descRPO, descLastReport, descInterval, descEvents} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if c.snap == nil || c.now().Sub(c.at) >= c.o.TTL {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.snap, c.at = c.read(ctx), c.now()
		cancel()
	}
	snap := c.snap
	c.mu.Unlock()
	for _, m := range snap {
		ch <- m
	}
}

func (c *stateCollector) failed(source string, err error) {
	c.errors.WithLabelValues(source).Inc()
	c.o.Logger.Warn("metrics: read failed", "source", source, "error", err)
}

// read takes one reading of the store; what fails is left out.
func (c *stateCollector) read(ctx context.Context) []prometheus.Metric {
	out := []prometheus.Metric{
		prometheus.MustNewConstMetric(descInterval, prometheus.GaugeValue, c.o.MonitorInterval.Seconds()),
	}
	out = append(out, c.readRuns(ctx)...)
	if lags, err := c.src.ReplicaLags(ctx); err != nil {
		c.failed("replicas", err)
	} else {
		for _, l := range lags {
			ok := 1.0
			if l.State == ferry.ReplicaError || (l.RPOSeconds > 0 && l.LagSeconds > float64(l.RPOSeconds)) {
				ok = 0
			}
			out = append(out,
				prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, l.LagSeconds, l.Group, l.Resource, l.Site),
				prometheus.MustNewConstMetric(descCompliant, prometheus.GaugeValue, ok, l.Group, l.Resource, l.Site))
		}
	}
	if groups, err := c.src.GroupsObserved(ctx); err != nil {
		c.failed("replicas", err)
	} else {
		for _, g := range groups {
			out = append(out,
				prometheus.MustNewConstMetric(descRPO, prometheus.GaugeValue, float64(g.RPOSeconds), g.Group),
				prometheus.MustNewConstMetric(descLastReport, prometheus.GaugeValue, float64(g.Observed.UnixMilli())/1000, g.Group))
		}
	}
	if events, err := c.src.CountEvents(ctx); err != nil {
		c.failed("events", err)
	} else {
		for _, e := range events {
			out = append(out, prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(e.Count), e.Group, e.Severity))
		}
	}
	return out
}

type kindState struct{ kind, state string }

type kindGroup struct{ kind, group string }

// readRuns counts runs by kind and state, the unfinished ones by their
// live state, and how long paused runs have been paused.
func (c *stateCollector) readRuns(ctx context.Context) []prometheus.Metric {
	counts, err := c.src.CountRuns(ctx)
	if err != nil {
		c.failed("runs", err)
		return nil
	}
	n := map[kindState]float64{}
	for _, rc := range counts {
		n[kindState{rc.Kind, rc.State}] += float64(rc.Count)
	}
	// The live states every kind with records shows, at 0 when no run is
	// in them, so that an alert's expression has a series to compare.
	kinds := map[string]bool{}
	for k := range n {
		kinds[k.kind] = true
	}
	for k := range kinds {
		for _, s := range []string{ferry.RunRunning, ferry.RunPaused, ferry.RunWaitingApproval, ferry.RunFailed} {
			n[kindState{k, s}] += 0
		}
	}
	paused := map[kindGroup]float64{}
	unfinished, err := c.src.UnfinishedRuns(ctx, c.o.MaxLiveRuns)
	if err != nil {
		c.failed("runs", err)
	}
	live := c.liveStates(ctx, unfinished)
	now := c.now()
	seen := map[string]bool{}
	for i, r := range unfinished {
		l := live[i]
		if l.State != "" && l.State != r.State {
			n[kindState{r.Kind, r.State}]--
			n[kindState{r.Kind, l.State}]++
		}
		if l.State != ferry.RunPaused {
			continue
		}
		seen[r.ID] = true
		first, ok := c.firstPaused[r.ID]
		if !ok {
			first = now
			c.firstPaused[r.ID] = now
		}
		since := pausedSince(l, first)
		g := kindGroup{r.Kind, r.Group}
		d := max(now.Sub(since).Seconds(), 0)
		if cur, ok := paused[g]; !ok || d > cur {
			paused[g] = d
		}
	}
	for id := range c.firstPaused {
		if !seen[id] {
			delete(c.firstPaused, id)
		}
	}
	out := make([]prometheus.Metric, 0, len(n)+len(paused))
	keys := make([]kindState, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].kind < keys[j].kind || keys[i].kind == keys[j].kind && keys[i].state < keys[j].state
	})
	for _, k := range keys {
		out = append(out, prometheus.MustNewConstMetric(descRuns, prometheus.GaugeValue, n[k], k.kind, k.state))
	}
	for g, d := range paused {
		out = append(out, prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, d, g.kind, g.group))
	}
	return out
}

// liveStates asks each unfinished run's workflow for its progress, a few
// at a time; a run whose workflow does not answer keeps its recorded
// state (its entry is a zero Run).
func (c *stateCollector) liveStates(ctx context.Context, runs []ferry.Run) []ferry.Run {
	out := make([]ferry.Run, len(runs))
	if c.o.Temporal == nil || len(runs) == 0 {
		return out
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for i, r := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			v, err := c.o.Temporal.QueryWorkflow(qctx, r.WorkflowID, r.ID, workflows.QueryProgress)
			var live ferry.Run
			if err == nil {
				err = v.Get(&live)
			}
			if err != nil {
				mu.Lock()
				failures++
				mu.Unlock()
				return
			}
			out[i] = live
		}()
	}
	wg.Wait()
	if failures > 0 {
		// Not logged per run: a run that ended without a record (its
		// workflow terminated) would log at every scrape.
		c.errors.WithLabelValues("progress").Add(float64(failures))
	}
	return out
}

// pausedSince is when a paused run's pause began: the later of its last
// pause request and its last failed step's end (a run pauses on a failed
// step to await a decision), or first when the record shows neither.
func pausedSince(r ferry.Run, first time.Time) time.Time {
	var since time.Time
	for _, e := range r.Events {
		if e.Action == "pause" && e.At.After(since) {
			since = e.At
		}
	}
	for _, s := range r.Steps {
		if s.State == ferry.StepFailed && s.Ended != nil && s.Ended.After(since) {
			since = *s.Ended
		}
	}
	if since.IsZero() {
		return first
	}
	return since
}
