package workflows

import (
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
)

func init() { register(MonitorWorkflowName, MonitorWorkflow) }

// Names of the replication monitor.
const (
	MonitorWorkflowName = "replication-monitor"
	// QueryMonitor returns the monitor's MonitorStatus: its last
	// observation.
	QueryMonitor = "monitor"

	DefaultMonitorInterval = 5 * time.Minute
	// DefaultMonitorMaxTicks bounds one run's history: after this many
	// ticks the monitor continues as new (sooner if Temporal suggests it).
	DefaultMonitorMaxTicks = 200
)

// MonitorWorkflowID is the workflow id of a backend's monitor: one per
// backend.
func MonitorWorkflowID(backend string) string { return "ferry-monitor-" + backend }

// Levels of a watched replica. An RPO violation is a warning past twice
// the group's RPO and critical past three times or in error; a suspended
// replica's lag grows on purpose and raises nothing.
const (
	LevelOK        = "ok"
	LevelWarning   = ferry.SeverityWarning
	LevelCritical  = ferry.SeverityCritical
	LevelSuspended = "suspended"
)

// MonitorInput starts (or continues) a backend's monitor.
type MonitorInput struct {
	Backend string `json:"backend"`
	// Interval between observations (default 5 minutes).
	Interval time.Duration `json:"interval,omitempty"`
	// MaxTicks per run before continue-as-new (default 200).
	MaxTicks int `json:"max_ticks,omitempty"`
	// State is what a previous run hands over on continue-as-new.
	State *MonitorState `json:"state,omitempty"`
}

// MonitorState is what the monitor carries across continue-as-new: the
// level of every replica it judges (so events stay transitions), its tick
// count (so idempotency keys stay unique) and its last observation.
type MonitorState struct {
	Ticks  int64                  `json:"ticks"`
	Paused bool                   `json:"paused,omitempty"`
	Levels map[string]LevelRecord `json:"levels,omitempty"`
	Last   *MonitorStatus         `json:"last,omitempty"`
	// Runs counts the runs of this monitor (1 + continues-as-new).
	Runs int `json:"runs"`
}

// LevelRecord is the level of a watched replica at its last judgement.
type LevelRecord struct {
	Group      string `json:"group"`
	Resource   string `json:"resource"`
	Site       string `json:"site"`
	Backend    string `json:"backend"`
	Level      string `json:"level"`
	RPOSeconds int    `json:"rpo_seconds"`
}

// MonitoredReplica is an observed replica and its level ("" when another
// backend's monitor judges it).
type MonitoredReplica struct {
	activities.ObservedReplica
	Level string `json:"level,omitempty"`
}

// MonitorStatus is the monitor's last observation, as the query answers it.
type MonitorStatus struct {
	Backend  string                     `json:"backend"`
	Interval time.Duration              `json:"interval"`
	Tick     int64                      `json:"tick"`
	Runs     int                        `json:"runs"`
	Paused   bool                       `json:"paused,omitempty"`
	Observed time.Time                  `json:"observed"`
	Replicas []MonitoredReplica         `json:"replicas"`
	Repairs  []activities.RepairOutcome `json:"repairs,omitempty"`
	// Events are those raised at the last tick.
	Events []ferry.ReplicationEvent `json:"events,omitempty"`
	Errors []string                 `json:"errors,omitempty"`
}

type monitor struct {
	in    MonitorInput
	state MonitorState
	runID string
	gone  bool
	// wake ends the wait for the next tick early (on resume).
	wake bool
}

// MonitorWorkflow watches one backend for as long as it exists: every
// interval it reads the state and lag of each replica with a copy on the
// backend and stores them, raises RPO-violation events on transitions,
// repairs broken relationships it may repair, and continues as new to keep
// its history small. It is not a group run: it holds no group and writes no
// run record; the "monitor" query shows its last observation, and the
// pause and resume updates stop and restart its ticks.
func MonitorWorkflow(ctx workflow.Context, in MonitorInput) error {
	if in.Interval <= 0 {
		in.Interval = DefaultMonitorInterval
	}
	if in.MaxTicks <= 0 {
		in.MaxTicks = DefaultMonitorMaxTicks
	}
	m := &monitor{in: in, runID: workflow.GetInfo(ctx).WorkflowExecution.RunID}
	if in.State != nil {
		m.state = *in.State
	}
	m.state.Runs++
	if m.state.Levels == nil {
		m.state.Levels = map[string]LevelRecord{}
	}
	m.in.State = nil
	if err := m.setup(ctx); err != nil {
		return err
	}
	publishState(ctx, m.monitorState)
	for ticks := 0; ; {
		if !m.state.Paused {
			m.tick(ctx)
			ticks++
		}
		if m.gone {
			return nil // the backend left the inventory
		}
		if ticks >= in.MaxTicks || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
		m.wake = false
		if _, err := workflow.AwaitWithTimeout(ctx, in.Interval, func() bool { return m.wake }); err != nil {
			return err
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	next := m.in
	state := m.state
	next.State = &state
	return workflow.NewContinueAsNewError(ctx, MonitorWorkflowName, next)
}

func (m *monitor) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryMonitor, func() (MonitorStatus, error) {
		st := MonitorStatus{Backend: m.in.Backend, Interval: m.in.Interval, Tick: m.state.Ticks, Runs: m.state.Runs}
		if m.state.Last != nil {
			st = *m.state.Last
			st.Runs = m.state.Runs
		}
		st.Paused = m.state.Paused
		return st, nil
	}); err != nil {
		return err
	}
	pause := func(paused bool) error {
		return workflow.SetUpdateHandlerWithOptions(ctx, map[bool]string{true: UpdatePause, false: UpdateResume}[paused],
			func(ctx workflow.Context, r SteerRequest) (bool, error) {
				m.state.Paused = paused
				m.wake = !paused // resuming looks at once
				return m.state.Paused, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r SteerRequest) error {
				if m.state.Paused == paused {
					return rejected("monitor of %s is already %s", m.in.Backend, map[bool]string{true: "paused", false: "running"}[paused])
				}
				return nil
			}})
	}
	if err := pause(true); err != nil {
		return err
	}
	return pause(false)
}

var (
	monitorObserveOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: 30 * time.Second, MaximumAttempts: 3},
	}
	monitorRepairOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: 30 * time.Second, MaximumAttempts: 3,
			NonRetryableErrorTypes: []string{activities.ErrPermanent}},
	}
	monitorRecordOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: 30 * time.Second, MaximumAttempts: 10},
	}
)

// tick is one look at the backend. A failing activity costs this tick, not
// the monitor: the next tick tries again.
func (m *monitor) tick(ctx workflow.Context) {
	m.state.Ticks++
	tick := m.state.Ticks
	st := &MonitorStatus{Backend: m.in.Backend, Interval: m.in.Interval, Tick: tick, Observed: now(ctx)}
	defer func() { m.state.Last = st }()

	var obs activities.Observation
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, monitorObserveOptions), a.ObserveBackend,
		activities.ObserveInput{Backend: m.in.Backend}).Get(ctx, &obs)
	if err != nil {
		st.Errors = append(st.Errors, "observe: "+message(err))
		if m.state.Last != nil { // keep showing what we knew
			st.Replicas = m.state.Last.Replicas
		}
		return
	}
	if obs.Gone {
		m.gone = true
		st.Errors = append(st.Errors, "backend "+m.in.Backend+" is no longer in the inventory; the monitor ends")
		return
	}
	st.Observed, st.Errors = obs.At, obs.Errors

	repaired := m.repair(ctx, tick, obs.Replicas, st)
	var events []ferry.ReplicationEvent
	seen := map[string]bool{}
	for _, r := range obs.Replicas {
		mr := MonitoredReplica{ObservedReplica: r}
		if r.Watched {
			seen[r.Key()] = true
			var ev *ferry.ReplicationEvent
			mr.Level, ev = m.judge(r, repaired[r.Key()], obs.At)
			if ev != nil {
				ev.ID = fmt.Sprintf("%s/%d/%s", m.runID, tick, r.Key())
				events = append(events, *ev)
			}
		}
		st.Replicas = append(st.Replicas, mr)
	}
	// A replica judged before and not watched now (it became the active
	// one, or left the inventory) closes its open violation.
	keys := make([]string, 0, len(m.state.Levels))
	for k := range m.state.Levels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if seen[k] {
			continue
		}
		l := m.state.Levels[k]
		delete(m.state.Levels, k)
		if l.Level == LevelWarning || l.Level == LevelCritical {
			events = append(events, ferry.ReplicationEvent{
				ID: fmt.Sprintf("%s/%d/%s", m.runID, tick, k), Group: l.Group, Resource: l.Resource, Site: l.Site,
				Backend: l.Backend, Severity: ferry.SeverityResolved, RPOSeconds: l.RPOSeconds, At: obs.At,
				Message: "no longer a lagging secondary on " + m.in.Backend + " (now active, or removed)",
			})
		}
	}
	st.Events = events
	if len(events) > 0 {
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, monitorRecordOptions), a.AddReplicationEvents, events).Get(ctx, nil)
		if err != nil {
			st.Errors = append(st.Errors, "record events: "+message(err))
		}
	}
}

// repair re-establishes the broken relationships the observation says it
// may, one activity for the backend, and replaces those replicas' state by
// what they are after. It returns each attempt by replica key.
func (m *monitor) repair(ctx workflow.Context, tick int64, rs []activities.ObservedReplica, st *MonitorStatus) map[string]activities.RepairOutcome {
	var items []activities.RepairItem
	for _, r := range rs {
		if r.Watched && r.Repairable {
			items = append(items, activities.RepairItem{
				Key:   activities.Key(m.runID, fmt.Sprintf("repair#%d", tick), r.Key()),
				Group: r.Group, Resource: r.Resource,
			})
		}
	}
	if len(items) == 0 {
		return nil
	}
	var outcomes []activities.RepairOutcome
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, monitorRepairOptions), a.RepairReplicas,
		activities.RepairInput{Backend: m.in.Backend, Items: items}).Get(ctx, &outcomes)
	if err != nil {
		st.Errors = append(st.Errors, "repair: "+message(err))
		return nil
	}
	st.Repairs = outcomes
	out := map[string]activities.RepairOutcome{}
	for _, o := range outcomes {
		for i := range rs {
			r := &rs[i]
			if r.Resource != o.Resource || r.Backend != o.Backend || !r.Watched {
				continue
			}
			out[r.Key()] = o
			if o.After != nil {
				watched := r.Watched
				*r = *o.After
				r.Watched = watched && r.State != ferry.ReplicaActive
			}
		}
	}
	return out
}

// judge levels a watched replica and returns the event its change of level
// raises, if any: events mark transitions, not ticks.
func (m *monitor) judge(r activities.ObservedReplica, rep activities.RepairOutcome, at time.Time) (string, *ferry.ReplicationEvent) {
	key := r.Key()
	prev, known := m.state.Levels[key]
	if !known {
		prev = LevelRecord{Level: LevelOK}
	}
	rec := LevelRecord{Group: r.Group, Resource: r.Resource, Site: r.Site, Backend: r.Backend, RPOSeconds: r.RPOSeconds}
	if r.Suspended {
		// Replication is paused on purpose: report the lag, raise
		// nothing, and keep the level the replica had.
		rec.Level = prev.Level
		m.state.Levels[key] = rec
		return LevelSuspended, nil
	}
	rpo := float64(r.RPOSeconds)
	var msg string
	switch {
	case r.State == ferry.ReplicaError:
		rec.Level = LevelCritical
		msg = "replica is in error"
		switch {
		case rep.Error != "":
			msg += "; repair failed: " + rep.Error
		case r.NoRepair != "":
			msg += "; not repaired: " + r.NoRepair
		}
	case rpo > 0 && r.LagSeconds > 3*rpo:
		rec.Level = LevelCritical
		msg = fmt.Sprintf("lag %.0fs exceeds 3x the RPO of %ds", r.LagSeconds, r.RPOSeconds)
	case rpo > 0 && r.LagSeconds > 2*rpo:
		rec.Level = LevelWarning
		msg = fmt.Sprintf("lag %.0fs exceeds 2x the RPO of %ds", r.LagSeconds, r.RPOSeconds)
	default:
		rec.Level = LevelOK
		msg = fmt.Sprintf("lag %.0fs is back within 2x the RPO of %ds", r.LagSeconds, r.RPOSeconds)
	}
	m.state.Levels[key] = rec
	if rep.Repaired {
		note := fmt.Sprintf("repaired: resynced from the active replica (%d writes discarded)", rep.Discarded)
		if rec.Level == LevelOK {
			msg = note
		} else {
			msg = note + "; " + msg
		}
	} else if rec.Level == prev.Level {
		return rec.Level, nil
	}
	sev := rec.Level
	if sev == LevelOK {
		sev = ferry.SeverityResolved
	}
	return rec.Level, &ferry.ReplicationEvent{
		Group: r.Group, Resource: r.Resource, Site: r.Site, Backend: r.Backend, Severity: sev,
		LagSeconds: r.LagSeconds, RPOSeconds: r.RPOSeconds, Message: msg, At: at,
	}
}
