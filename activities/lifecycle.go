package activities

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// The replication lifecycle of a protection group: protect, unprotect,
// reprotect, failback, suspend, resume. Every storage call here acts on one
// batch (the group's resources one backend replicates to one peer backend).

// LifecycleInput asks PlanLifecycle to plan one lifecycle run of a group.
type LifecycleInput struct {
	Group string `json:"group"`
	Kind  string `json:"kind"` // ferry.KindProtect, ...
}

// FencedBackend is a peer backend that a past unplanned failover fenced.
type FencedBackend struct {
	Backend string `json:"backend"`
	Epoch   int64  `json:"epoch"`
	// Frozen: the failover froze it with the fence (it answered then).
	Frozen bool `json:"frozen,omitempty"`
}

// LifecyclePlan is what a lifecycle run acts on, fixed at precheck. Its
// batches go from the backends at ActiveSite, where the group runs now and
// its replicas are active, to the backends at PeerSite, which hold (or will
// hold) the secondaries.
type LifecyclePlan struct {
	Group      ferry.Group `json:"group"`
	ActiveSite string      `json:"active_site"`
	PeerSite   string      `json:"peer_site"`
	Batches    []Batch     `json:"batches"`
	// Missing are resources without a replica at the peer backend.
	Missing []string `json:"missing,omitempty"`
	// Suspended are resources whose replication is suspended.
	Suspended []string `json:"suspended,omitempty"`
	// Fenced are peer backends under a fence.
	Fenced   []FencedBackend `json:"fenced,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
}

// PeerSite is the other side of a group from site: its DR site when it
// runs at home, its primary site anywhere else (after a failover, to the DR
// site or to a third one, home is where replication goes back to).
func PeerSite(g ferry.Group, site string) string {
	if site == g.PrimarySite {
		return g.DRSite
	}
	return g.PrimarySite
}

// PlanLifecycle reads the group, routes each resource from the backend that
// holds its active copy to its peer backend, and checks against the storage
// that the actives really are where the inventory says and what the kind
// needs. It changes nothing but the replicas' last observed state.
func (a *Activities) PlanLifecycle(ctx context.Context, in LifecycleInput) (LifecyclePlan, error) {
	g, err := a.Store.GetGroup(ctx, in.Group)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return LifecyclePlan{}, precheckErr("group %s does not exist", in.Group)
		}
		return LifecyclePlan{}, fmt.Errorf("precheck: %w", err)
	}
	p := LifecyclePlan{Group: withoutHookTargets(g), ActiveSite: g.ActiveSite}
	if p.ActiveSite == "" {
		p.ActiveSite = g.PrimarySite
	}
	p.PeerSite = PeerSite(g, p.ActiveSite)
	if in.Kind == ferry.KindFailback && p.ActiveSite == g.PrimarySite {
		return LifecyclePlan{}, precheckErr("group %s already runs at its primary site %s: nothing to fail back", g.Name, g.PrimarySite)
	}
	needsLifecycle := in.Kind == ferry.KindProtect || in.Kind == ferry.KindUnprotect || in.Kind == ferry.KindSuspend || in.Kind == ferry.KindResume
	if needsLifecycle && a.Drivers.Replication == nil {
		return LifecyclePlan{}, precheckErr("the storage adapter cannot manage replication (%s)", in.Kind)
	}

	batches := map[string]*Batch{}
	var order []string
	add := func(resource, primaryBackend string) error {
		src, dst, err := a.route(ctx, primaryBackend, p.ActiveSite, p.PeerSite)
		if err != nil {
			return err
		}
		key := src.Name + "->" + dst.backend.Name
		b, ok := batches[key]
		if !ok {
			b = &Batch{Source: src.Name, Target: dst.backend.Name, TargetID: dst.id, TargetMembers: dst.backend.Members}
			batches[key] = b
			order = append(order, key)
		}
		b.Resources = append(b.Resources, resource)
		return nil
	}
	for _, v := range g.Volumes {
		if err := add(v.Name, v.Backend); err != nil {
			return LifecyclePlan{}, err
		}
	}
	for _, s := range g.Shares {
		if err := add(s.Name, s.Backend); err != nil {
			return LifecyclePlan{}, err
		}
	}
	sort.Strings(order)
	var resources []string
	for _, k := range order {
		p.Batches = append(p.Batches, *batches[k])
		resources = append(resources, batches[k].Resources...)
	}
	if len(resources) == 0 {
		return LifecyclePlan{}, precheckErr("group %s has no volumes or shares", g.Name)
	}

	// Both sides must answer: every lifecycle run acts on the peer, or waits
	// for it, except suspend, which only tells the actives to stop shipping.
	for _, b := range p.Batches {
		for _, be := range []string{b.Source, b.Target} {
			if in.Kind == ferry.KindSuspend && be == b.Target {
				continue
			}
			st, err := a.Drivers.Storage.BackendStatus(ctx, be)
			if err != nil && drivers.Kind(err) != drivers.Unreachable {
				return LifecyclePlan{}, wrap("precheck: backend "+be, err)
			}
			if err != nil || !st.Reachable {
				return LifecyclePlan{}, precheckErr("backend %s is unreachable: %s needs it", be, in.Kind)
			}
			switch {
			case be == b.Target && st.Fenced:
				if !hasFenced(p.Fenced, be) {
					p.Fenced = append(p.Fenced, FencedBackend{Backend: be, Epoch: st.FenceEpoch, Frozen: st.Frozen})
				}
			case st.Frozen:
				// A freeze without a fence is an admin's (or a backend
				// failover's): not ours to lift.
				return LifecyclePlan{}, precheckErr("backend %s is frozen: thaw it before a %s run", be, in.Kind)
			}
		}
	}

	status, err := a.Drivers.Storage.ReplicationStatus(ctx, resources)
	if err != nil {
		return LifecyclePlan{}, wrap("precheck: replication status", err)
	}
	type seen struct{ active, peer, suspended bool }
	found := map[string]*seen{}
	for _, r := range resources {
		found[r] = &seen{}
	}
	sourceOf, targetOf := map[string]string{}, map[string]string{}
	for _, b := range p.Batches {
		for _, r := range b.Resources {
			sourceOf[r], targetOf[r] = b.Source, b.Target
		}
	}
	now := time.Now().UTC()
	var observed []ferry.Replica
	for _, r := range status {
		f := found[r.Resource]
		if f == nil {
			continue
		}
		if r.Backend == sourceOf[r.Resource] && r.State == ferry.ReplicaActive {
			f.active = true
		}
		if r.Backend == targetOf[r.Resource] {
			f.peer = true
		}
		f.suspended = f.suspended || r.Suspended
		observed = append(observed, ferry.Replica{Group: g.Name, Resource: r.Resource, Kind: resourceKind(g, r.Resource),
			Site: r.Site, Backend: r.Backend, State: r.State, Seq: r.Seq, LagSecs: r.Lag.Seconds(), Observed: now})
	}
	for _, r := range resources {
		f := found[r]
		if !f.active {
			return LifecyclePlan{}, precheckErr("%s is not active on %s at site %s, where group %s runs: finish the failover first", r, sourceOf[r], p.ActiveSite, g.Name)
		}
		if !f.peer {
			p.Missing = append(p.Missing, r)
		}
		if f.suspended {
			p.Suspended = append(p.Suspended, r)
		}
	}

	switch in.Kind {
	case ferry.KindProtect, ferry.KindReprotect, ferry.KindFailback:
		if len(p.Suspended) > 0 {
			return LifecyclePlan{}, precheckErr("replication of %s is suspended: resume the group first", strings.Join(p.Suspended, ", "))
		}
		if len(p.Missing) > 0 && a.Drivers.Replication == nil {
			return LifecyclePlan{}, precheckErr("%s has no replica at site %s and the storage adapter cannot create one", strings.Join(p.Missing, ", "), p.PeerSite)
		}
	case ferry.KindSuspend, ferry.KindResume:
		if len(p.Missing) > 0 {
			return LifecyclePlan{}, precheckErr("%s has no replica at site %s: the group is not protected", strings.Join(p.Missing, ", "), p.PeerSite)
		}
	case ferry.KindUnprotect:
		if len(p.Missing) == len(resources) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("no resource has a replica at site %s: nothing to remove", p.PeerSite))
		}
	}
	if len(observed) > 0 {
		if err := a.Store.PutReplicas(ctx, g.Name, observed); err != nil {
			return LifecyclePlan{}, fmt.Errorf("precheck: record replicas: %w", err)
		}
	}
	return p, nil
}

func hasFenced(fs []FencedBackend, be string) bool {
	for _, f := range fs {
		if f.Backend == be {
			return true
		}
	}
	return false
}

func (a *Activities) replication(op string) (drivers.Replication, error) {
	if a.Drivers.Replication == nil {
		return nil, temporal.NewNonRetryableApplicationError(op+": the storage adapter cannot manage replication", ErrPermanent, nil)
	}
	return a.Drivers.Replication, nil
}

// EnableReplication creates the batch's replicas on its target backend and
// starts replicating into them; existing replicas are left as they are.
func (a *Activities) EnableReplication(ctx context.Context, in BatchInput) error {
	r, err := a.replication("enable replication")
	if err != nil {
		return err
	}
	return wrap("enable replication "+in.Batch.Source+"->"+in.Batch.Target,
		r.EnableReplication(ctx, in.Key, in.Batch.Source, in.Batch.Target, in.Batch.Resources))
}

// DisableReplication removes the batch's replicas on its target backend.
func (a *Activities) DisableReplication(ctx context.Context, in BatchInput) error {
	r, err := a.replication("disable replication")
	if err != nil {
		return err
	}
	return wrap("disable replication on "+in.Batch.Target, r.DisableReplication(ctx, in.Key, in.Batch.Target, in.Batch.Resources))
}

// SuspendReplication stops shipping the batch's writes to its secondaries.
func (a *Activities) SuspendReplication(ctx context.Context, in BatchInput) error {
	r, err := a.replication("suspend replication")
	if err != nil {
		return err
	}
	return wrap("suspend replication on "+in.Batch.Source, r.SuspendReplication(ctx, in.Key, in.Batch.Source, in.Batch.Resources))
}

// ResumeReplication ships the batch's writes again.
func (a *Activities) ResumeReplication(ctx context.Context, in BatchInput) error {
	r, err := a.replication("resume replication")
	if err != nil {
		return err
	}
	return wrap("resume replication on "+in.Batch.Source, r.ResumeReplication(ctx, in.Key, in.Batch.Source, in.Batch.Resources))
}

// Resync makes the batch's replicas on its target secondaries of the
// actives, discarding what they hold that the actives lack (a returning old
// primary's unreplicated writes), and says how many writes that was.
func (a *Activities) Resync(ctx context.Context, in BatchInput) (drivers.ResyncResult, error) {
	activity.RecordHeartbeat(ctx, in.Batch.Target)
	res, err := a.Drivers.Storage.Resync(ctx, in.Key, in.Batch.Target, in.Batch.Resources)
	return res, wrap("resync "+in.Batch.Target, err)
}

// InSyncInput waits for a batch's target replicas.
type InSyncInput struct {
	Batch      Batch `json:"batch"`
	RPOSeconds int   `json:"rpo_seconds"`
}

// InSync is how far behind the batch's replicas were once all were in sync.
type InSync struct {
	MaxLagSeconds float64 `json:"max_lag_seconds"`
}

// WaitInSync returns once every target replica of the batch is in_sync,
// shipping (not suspended) and within the group's RPO. A replica still
// behind is a retryable error: the retry policy is the wait loop.
func (a *Activities) WaitInSync(ctx context.Context, in InSyncInput) (InSync, error) {
	st, err := a.Drivers.Storage.ReplicationStatus(ctx, in.Batch.Resources)
	if err != nil {
		return InSync{}, wrap("replication status", err)
	}
	rpo := time.Duration(in.RPOSeconds) * time.Second
	var out InSync
	var behind []string
	for _, res := range in.Batch.Resources {
		why := "no replica"
		for _, r := range st {
			if r.Resource != res || r.Backend != in.Batch.Target {
				continue
			}
			switch {
			case r.Suspended:
				why = "suspended"
			case r.State != ferry.ReplicaInSync:
				why = r.State
			case rpo > 0 && r.Lag > rpo:
				why = "lag " + r.Lag.String()
			default:
				why = ""
				out.MaxLagSeconds = max(out.MaxLagSeconds, r.Lag.Seconds())
			}
		}
		if why != "" {
			behind = append(behind, res+" ("+why+")")
		}
	}
	if len(behind) > 0 {
		return InSync{}, temporal.NewApplicationError(fmt.Sprintf("not yet in sync on %s: %s", in.Batch.Target, strings.Join(behind, ", ")), drivers.Retryable)
	}
	return out, nil
}

// ReleaseFenceInput lifts a fence a past unplanned failover left on a peer
// backend.
type ReleaseFenceInput struct {
	Key     string `json:"key"`
	Backend string `json:"backend"`
	Epoch   int64  `json:"epoch"`
}

// ReleaseFenceResult says whether the fence was lifted, and if not why.
type ReleaseFenceResult struct {
	Released bool   `json:"released"`
	Note     string `json:"note,omitempty"`
}

// ReleaseFence unfences (and thaws) a backend once no replica on it can
// become a second writable active: a fence is backend-wide, so every
// replica on it, of every group, must be an active or a following
// secondary; one still diverged (a group not yet reprotected) keeps the
// backend fenced (invariant 1).
func (a *Activities) ReleaseFence(ctx context.Context, in ReleaseFenceInput) (ReleaseFenceResult, error) {
	var blocked []string
	page := ferry.Page{Limit: 100}
	for {
		groups, next, err := a.Store.ListGroups(ctx, page)
		if err != nil {
			return ReleaseFenceResult{}, fmt.Errorf("release fence: list groups: %w", err)
		}
		for _, g := range groups {
			var names []string
			for _, v := range g.Volumes {
				names = append(names, v.Name)
			}
			for _, s := range g.Shares {
				names = append(names, s.Name)
			}
			if len(names) == 0 {
				continue
			}
			st, err := a.Drivers.Storage.ReplicationStatus(ctx, names)
			if drivers.Kind(err) == drivers.Permanent {
				continue // the storage does not know this group's resources
			} else if err != nil {
				return ReleaseFenceResult{}, wrap("release fence: replication status", err)
			}
			for _, r := range st {
				if r.Backend == in.Backend && r.State == ferry.ReplicaError {
					blocked = append(blocked, r.Resource+" (group "+g.Name+")")
				}
			}
		}
		if next == "" {
			break
		}
		page.Token = next
	}
	if len(blocked) > 0 {
		return ReleaseFenceResult{Note: fmt.Sprintf("%s stays fenced: %s not resynced yet", in.Backend, strings.Join(blocked, ", "))}, nil
	}
	if err := a.Unfence(ctx, FenceInput(in)); err != nil {
		return ReleaseFenceResult{}, err
	}
	return ReleaseFenceResult{Released: true, Note: fmt.Sprintf("%s unfenced (epoch %d)", in.Backend, in.Epoch)}, nil
}

// ThawFenced thaws a backend that an unplanned failover froze along with
// its fence, so a resync can act on it. The fence stays: the backend still
// takes no write.
func (a *Activities) ThawFenced(ctx context.Context, in FenceInput) error {
	return wrap("thaw "+in.Backend, a.Drivers.Storage.Thaw(ctx, in.Key, in.Backend))
}

// RecordReplicas stores the group's replicas as the storage reports them.
func (a *Activities) RecordReplicas(ctx context.Context, group string) error {
	if err := a.refreshReplicas(ctx, group); err != nil {
		return fmt.Errorf("record replicas of %s: %w", group, err)
	}
	return nil
}

// TrackChildRun stores the record of a child run as it starts (a failback's
// failover), so the API can show and steer it like any run.
func (a *Activities) TrackChildRun(ctx context.Context, r ferry.Run) error {
	return a.Store.CreateRun(ctx, r)
}
