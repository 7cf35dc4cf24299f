package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydr/ferry"
)

// runMetrics are observed by the worker when a run's final record is
// written (the RecordRun activity), once per run: a histogram's _count is
// then the number of runs that ended, by kind and final state, and
// increase(ferry_run_duration_seconds_count{state="failed"}[15m]) is what
// an alert on failed runs reads. It is a counter of this worker process,
// reset when it restarts, which increase() handles.
type runMetrics struct {
	duration *prometheus.HistogramVec
	steps    *prometheus.HistogramVec
}

func newRunMetrics() *runMetrics {
	return &runMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_run_duration_seconds",
			Help: "Duration of ended runs, from start to final record, by kind and final state (completed, rolled_back, failed, aborted).",
			// 1 s to about 4.5 hours: a drill's hold or a long pause
			// counts in a run's duration.
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}, []string{"kind", "state"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_run_step_duration_seconds",
			Help: "Duration of the steps of ended runs (last attempt), by run kind, step and step state.",
			// 100 ms to about 3.6 hours.
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 18),
		}, []string{"kind", "step", "state"}),
	}
}

// RunRecorded observes a run whose final record was just stored: its
// duration, and that of each step that started and ended. A record that is
// not final (no end time) is ignored. Step names are the runbook's
// ("promote", "boot:<tier>", hooks by name): bounded by the inventory.
func (r *Registry) RunRecorded(run ferry.Run) {
	if r == nil || run.Ended == nil || !ferry.RunEnded(run.State) {
		return
	}
	m := r.runs
	if d := run.Ended.Sub(run.Created); !run.Created.IsZero() && d >= 0 {
		m.duration.WithLabelValues(run.Kind, run.State).Observe(d.Seconds())
	}
	for _, s := range run.Steps {
		if s.Started == nil || s.Ended == nil {
			continue
		}
		if d := s.Ended.Sub(*s.Started); d >= 0 {
			m.steps.WithLabelValues(run.Kind, s.Name, s.State).Observe(d.Seconds())
		}
	}
}
