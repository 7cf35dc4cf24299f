package activities

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// ObserveInput asks for the replicas a backend's monitor watches.
type ObserveInput struct {
	Backend string `json:"backend"`
}

// ObservedReplica is one replica as the monitor saw it, with what the
// monitor needs to judge it.
type ObservedReplica struct {
	Group      string  `json:"group"`
	Resource   string  `json:"resource"`
	Kind       string  `json:"kind"`
	Site       string  `json:"site"`
	Backend    string  `json:"backend"`
	State      string  `json:"replica_state"`
	Seq        int64   `json:"seq"`
	LagSeconds float64 `json:"lag_seconds"`
	Suspended  bool    `json:"suspended,omitempty"`
	RPOSeconds int     `json:"rpo_seconds"`
	// Watched: the replica lives on the observed backend and is not the
	// active one, so judging its lag is this backend's monitor's job (each
	// replica has exactly one judge, and raises events once).
	Watched bool `json:"watched,omitempty"`
	// Repairable: a watched replica in error whose relationship can be
	// re-established now (its backend answers and is not fenced, the
	// resource's active replica answers, no run of the group is in
	// progress). NoRepair says why not, for one in error that is not.
	Repairable bool   `json:"repairable,omitempty"`
	NoRepair   string `json:"no_repair,omitempty"`
}

// Key names a replica: resource@site.
func (r ObservedReplica) Key() string { return r.Resource + "@" + r.Site }

// Observation is what one look at a backend found.
type Observation struct {
	Backend string    `json:"backend"`
	At      time.Time `json:"at"`
	// Gone: the backend is no longer in the inventory; its monitor ends.
	Gone     bool              `json:"gone,omitempty"`
	Replicas []ObservedReplica `json:"replicas"`
	// Errors are groups whose replicas could not be read this time.
	Errors []string `json:"errors,omitempty"`
}

// ObserveBackend reads the state and lag of every replica of every resource
// with a copy on the backend (its primary backend is the backend, or
// replicates to it), one status call per group, and stores them. It decides
// nothing about RPOs; the monitor does.
func (a *Activities) ObserveBackend(ctx context.Context, in ObserveInput) (Observation, error) {
	obs := Observation{Backend: in.Backend, At: time.Now().UTC(), Replicas: []ObservedReplica{}}
	self, err := a.Store.GetBackend(ctx, in.Backend)
	if ferry.ErrorCode(err) == ferry.ENotFound {
		obs.Gone = true
		return obs, nil
	} else if err != nil {
		return obs, fmt.Errorf("observe %s: %w", in.Backend, err)
	}
	backends := map[string]ferry.Backend{self.Name: self}
	// onBackend: does a resource whose primary copy is on primary have a
	// copy on the observed backend?
	onBackend := func(primary string) (bool, error) {
		if primary == in.Backend {
			return true, nil
		}
		b, ok := backends[primary]
		if !ok {
			var err error
			b, err = a.Store.GetBackend(ctx, primary)
			if ferry.ErrorCode(err) == ferry.ENotFound {
				return false, nil
			} else if err != nil {
				return false, err
			}
			backends[primary] = b
		}
		for _, t := range b.ReplicationTargets {
			if t.Backend == in.Backend {
				return true, nil
			}
		}
		return false, nil
	}

	page := ferry.Page{Limit: listPageSize}
	for {
		groups, next, err := a.Store.ListGroups(ctx, page)
		if err != nil {
			return obs, fmt.Errorf("observe %s: list groups: %w", in.Backend, err)
		}
		for _, g := range groups {
			var names []string
			for _, r := range append(volumeRefs(g), shareRefs(g)...) {
				ok, err := onBackend(r[1])
				if err != nil {
					return obs, fmt.Errorf("observe %s: backend %s: %w", in.Backend, r[1], err)
				}
				if ok {
					names = append(names, r[0])
				}
			}
			if len(names) == 0 {
				continue
			}
			rs, err := a.observeGroup(ctx, in.Backend, g, names, obs.At)
			if err != nil {
				obs.Errors = append(obs.Errors, fmt.Sprintf("%s: %s", g.Name, err))
				continue
			}
			obs.Replicas = append(obs.Replicas, rs...)
			activity.RecordHeartbeat(ctx, g.Name)
		}
		if next == "" {
			break
		}
		page.Token = next
	}
	if err := a.judgeRepairs(ctx, in.Backend, obs.Replicas); err != nil {
		return obs, err
	}
	return obs, nil
}

// observeGroup reads and stores the replicas of some of a group's resources.
func (a *Activities) observeGroup(ctx context.Context, backend string, g ferry.Group, names []string, at time.Time) ([]ObservedReplica, error) {
	st, err := a.Drivers.Storage.ReplicationStatus(ctx, names)
	if err != nil {
		return nil, wrap("replication status", err)
	}
	stored := make([]ferry.Replica, 0, len(st))
	out := make([]ObservedReplica, 0, len(st))
	for _, r := range st {
		kind := resourceKind(g, r.Resource)
		stored = append(stored, ferry.Replica{Group: g.Name, Resource: r.Resource, Kind: kind, Site: r.Site,
			Backend: r.Backend, State: r.State, Seq: r.Seq, LagSecs: r.Lag.Seconds(), Observed: at})
		out = append(out, observed(g, kind, r, backend))
	}
	if err := a.Store.PutReplicas(ctx, g.Name, stored); err != nil {
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return nil, nil // deleted meanwhile
		}
		return nil, fmt.Errorf("store replicas: %w", err)
	}
	return out, nil
}

func observed(g ferry.Group, kind string, r drivers.ReplicaStatus, backend string) ObservedReplica {
	return ObservedReplica{
		Group: g.Name, Resource: r.Resource, Kind: kind, Site: r.Site, Backend: r.Backend, State: r.State,
		Seq: r.Seq, LagSeconds: r.Lag.Seconds(), Suspended: r.Suspended, RPOSeconds: g.RPOSeconds,
		Watched: r.Backend == backend && r.State != ferry.ReplicaActive,
	}
}

// judgeRepairs marks which watched replicas in error the monitor may repair
// now. It never touches a replica of a group with a run in progress (the
// run owns it), nor one on a fenced backend: an unplanned failover fenced
// it, and what its writes become is reprotect's decision, not a monitor's.
func (a *Activities) judgeRepairs(ctx context.Context, backend string, rs []ObservedReplica) error {
	activeAnswers := map[string]bool{}
	for _, r := range rs {
		if r.State == ferry.ReplicaActive {
			activeAnswers[r.Resource] = true
		}
	}
	var status *drivers.BackendStatus
	var statusErr error
	runs := map[string][]ferry.Run{}
	for i := range rs {
		r := &rs[i]
		if !r.Watched || r.State != ferry.ReplicaError {
			continue
		}
		if status == nil && statusErr == nil {
			st, err := a.Drivers.Storage.BackendStatus(ctx, backend)
			if err != nil {
				statusErr = err
			} else {
				status = &st
			}
		}
		switch {
		case statusErr != nil || !status.Reachable:
			r.NoRepair = "backend " + backend + " does not answer"
			continue
		case status.Fenced:
			r.NoRepair = "backend " + backend + " is fenced (after an unplanned failover): reprotect resyncs it"
			continue
		case !activeAnswers[r.Resource]:
			r.NoRepair = "the active replica of " + r.Resource + " does not answer"
			continue
		}
		active, ok := runs[r.Group]
		if !ok {
			var err error
			active, err = a.Store.ActiveRuns(ctx, r.Group)
			if err != nil {
				return fmt.Errorf("observe %s: runs of %s: %w", backend, r.Group, err)
			}
			runs[r.Group] = active
		}
		if len(active) > 0 {
			r.NoRepair = fmt.Sprintf("a %s run of group %s is in progress (%s)", active[0].Kind, r.Group, active[0].ID)
			continue
		}
		r.Repairable = true
	}
	return nil
}

// RepairItem is one replica to repair, with its own idempotency key.
type RepairItem struct {
	Key      string `json:"key"`
	Group    string `json:"group"`
	Resource string `json:"resource"`
}

// RepairInput asks to re-establish broken relationships of replicas on one
// backend.
type RepairInput struct {
	Backend string       `json:"backend"`
	Items   []RepairItem `json:"items"`
}

// RepairOutcome is what a repair did to one replica.
type RepairOutcome struct {
	Group    string `json:"group"`
	Resource string `json:"resource"`
	Site     string `json:"site,omitempty"`
	Backend  string `json:"backend"`
	Repaired bool   `json:"repaired"`
	// Discarded counts writes the replica held that the active lacked,
	// thrown away by the resync.
	Discarded int64  `json:"discarded"`
	Error     string `json:"error,omitempty"`
	// After is the replica's state once repaired.
	After *ObservedReplica `json:"after,omitempty"`
}

// RepairReplicas resyncs each replica on the backend from its resource's
// active replica (Manila's update_replica_status fixing a broken
// relationship), one resource at a time so one that cannot be repaired does
// not hold back the others, then reads and stores their state again.
func (a *Activities) RepairReplicas(ctx context.Context, in RepairInput) ([]RepairOutcome, error) {
	out := make([]RepairOutcome, 0, len(in.Items))
	for _, it := range in.Items {
		o := RepairOutcome{Group: it.Group, Resource: it.Resource, Backend: in.Backend}
		res, err := a.Drivers.Storage.Resync(ctx, it.Key, in.Backend, []string{it.Resource})
		activity.RecordHeartbeat(ctx, it.Resource)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			o.Error = wrap("resync "+it.Resource+" on "+in.Backend, err).Error()
			out = append(out, o)
			continue
		}
		o.Repaired, o.Discarded = true, res.Discarded[it.Resource]
		out = append(out, o)
	}
	// Read the repaired replicas back, per group, so the monitor judges
	// and the API shows what they are now.
	byGroup := map[string][]int{}
	for i, o := range out {
		if o.Repaired {
			byGroup[o.Group] = append(byGroup[o.Group], i)
		}
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, name := range groups {
		g, err := a.Store.GetGroup(ctx, name)
		if err != nil {
			continue // deleted meanwhile: nothing to show
		}
		idx := byGroup[name]
		names := make([]string, 0, len(idx))
		for _, i := range idx {
			names = append(names, out[i].Resource)
		}
		rs, err := a.observeGroup(ctx, in.Backend, g, names, time.Now().UTC())
		if err != nil {
			return nil, err
		}
		for _, i := range idx {
			for _, r := range rs {
				if r.Resource == out[i].Resource && r.Backend == in.Backend {
					r := r
					out[i].After, out[i].Site = &r, r.Site
				}
			}
		}
	}
	return out, nil
}

// AddReplicationEvents stores the events a monitor raised; the events'
// deterministic ids make a retry store nothing twice.
func (a *Activities) AddReplicationEvents(ctx context.Context, events []ferry.ReplicationEvent) error {
	if err := a.Store.AddEvents(ctx, events); err != nil {
		return fmt.Errorf("add replication events: %w", err)
	}
	return nil
}

// volumeRefs and shareRefs list a group's resources as (name, primary
// backend) pairs.
func volumeRefs(g ferry.Group) [][2]string {
	out := make([][2]string, 0, len(g.Volumes))
	for _, v := range g.Volumes {
		out = append(out, [2]string{v.Name, v.Backend})
	}
	return out
}

func shareRefs(g ferry.Group) [][2]string {
	out := make([][2]string, 0, len(g.Shares))
	for _, s := range g.Shares {
		out = append(out, [2]string{s.Name, s.Backend})
	}
	return out
}
