package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// BackendPlanInput asks BackendPrecheck to plan a backend failover.
type BackendPlanInput struct {
	Backend string `json:"backend"`
	// TargetID is a replication target id of the backend, "default" to
	// fail back, or "" for its first target.
	TargetID string `json:"target_id,omitempty"`
}

// BackendBookkeeping is a backend's replication_status, active_backend_id
// and frozen flag, as the storage or the inventory keeps them.
type BackendBookkeeping struct {
	Status   string `json:"status"`
	ActiveID string `json:"active_id"`
	Frozen   bool   `json:"frozen"`
}

// BackendPlan is what a backend failover will do, fixed at precheck.
type BackendPlan struct {
	Backend string `json:"backend"`
	Site    string `json:"site"`
	// TargetID is the resolved target id; "default" fails back.
	TargetID      string `json:"target_id"`
	TargetBackend string `json:"target_backend"`
	TargetSite    string `json:"target_site"`
	Failback      bool   `json:"failback,omitempty"`
	// Forced: the backend's site does not answer, so its replicas are
	// force-promoted and its own bookkeeping cannot be reached.
	Forced bool `json:"forced,omitempty"`
	// Serving is the backend whose cluster serves the backend's resources
	// after the run; every one of its Members is told ActiveBackendID.
	Serving         string   `json:"serving"`
	Members         []string `json:"members"`
	ActiveBackendID string   `json:"active_backend_id"`
	// What the run found, restored by a rollback.
	Storage  BackendBookkeeping `json:"storage"`
	Recorded BackendBookkeeping `json:"recorded"`
	Warnings []string           `json:"warnings,omitempty"`
}

// BackendPrecheck resolves the target and refuses, before anything
// changes, what Cinder's failover_host got wrong: a target the backend does
// not replicate to, a failover from one secondary to another, a failback
// of a backend that is home. The target (or, failing back, the backend)
// must answer; the backend itself may be down, then the failover is forced.
func (a *Activities) BackendPrecheck(ctx context.Context, in BackendPlanInput) (BackendPlan, error) {
	if a.Drivers.Host == nil {
		return BackendPlan{}, precheckErr("the storage adapter cannot fail over a whole backend")
	}
	b, err := a.Store.GetBackend(ctx, in.Backend)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return BackendPlan{}, precheckErr("backend %q does not exist", in.Backend)
		}
		return BackendPlan{}, fmt.Errorf("precheck: %w", err)
	}
	p := BackendPlan{Backend: b.Name, Site: b.Site, TargetID: in.TargetID,
		Recorded: BackendBookkeeping{Status: b.ReplicationStatus, ActiveID: b.ActiveBackendID, Frozen: b.Frozen}}
	st, err := a.Drivers.Storage.BackendStatus(ctx, b.Name)
	switch {
	case err == nil && st.Reachable:
		p.Storage = BackendBookkeeping{Status: st.ReplicationStatus, ActiveID: st.ActiveBackendID, Frozen: st.Frozen}
	case err == nil || drivers.Kind(err) == drivers.Unreachable:
		p.Forced = true
		p.Storage = p.Recorded
	default:
		return BackendPlan{}, wrap("precheck: backend "+b.Name, err)
	}
	active := p.Storage.ActiveID
	if active == "" || active == ferry.ActiveBackendDefault {
		active = b.ActiveBackendID
	}
	if active == ferry.ActiveBackendDefault {
		active = ""
	}
	var ids []string
	for _, t := range b.ReplicationTargets {
		ids = append(ids, t.ID)
	}
	if p.TargetID == "" {
		if len(ids) == 0 {
			return BackendPlan{}, precheckErr("backend %s has no replication targets", b.Name)
		}
		p.TargetID = ids[0]
	}

	if p.TargetID == ferry.ActiveBackendDefault {
		p.Failback = true
		if active == "" {
			return BackendPlan{}, precheckErr("backend %s is not failed over (active_backend_id is empty): there is nothing to fail back", b.Name)
		}
		if p.Forced {
			return BackendPlan{}, precheckErr("backend %s at site %s is unreachable: it cannot take its resources back", b.Name, b.Site)
		}
		p.TargetBackend, p.TargetSite = b.Name, b.Site
		p.Serving, p.ActiveBackendID = b.Name, ferry.ActiveBackendDefault
	} else {
		var target string
		for _, t := range b.ReplicationTargets {
			if t.ID == p.TargetID {
				target = t.Backend
			}
		}
		switch {
		case target == "":
			return BackendPlan{}, precheckErr("backend %s has no replication target %q (its targets: %s, or %q to fail back)",
				b.Name, p.TargetID, strings.Join(ids, ", "), ferry.ActiveBackendDefault)
		case active == p.TargetID:
			return BackendPlan{}, precheckErr("backend %s is already failed over to %q", b.Name, p.TargetID)
		case active != "":
			return BackendPlan{}, precheckErr("backend %s is failed over to %q: a failover from one secondary to another (%q) is refused; fail back with target %q first",
				b.Name, active, p.TargetID, ferry.ActiveBackendDefault)
		}
		tb, err := a.Store.GetBackend(ctx, target)
		if err != nil {
			return BackendPlan{}, storeErr(err, "replication target %s of %s", target, b.Name)
		}
		p.TargetBackend, p.TargetSite = tb.Name, tb.Site
		p.Serving, p.ActiveBackendID = tb.Name, p.TargetID
	}

	// The serving side must answer: its cluster takes over.
	serving, err := a.Drivers.Storage.BackendStatus(ctx, p.Serving)
	if err != nil || !serving.Reachable {
		if err != nil && drivers.Kind(err) != drivers.Unreachable {
			return BackendPlan{}, wrap("precheck: backend "+p.Serving, err)
		}
		return BackendPlan{}, precheckErr("backend %s that would serve after the run is unreachable", p.Serving)
	}
	// Every member counts: the inventory's and those the storage knows.
	seen := map[string]bool{}
	if sb, err := a.Store.GetBackend(ctx, p.Serving); err == nil {
		for _, m := range sb.Members {
			if !seen[m] {
				seen[m] = true
				p.Members = append(p.Members, m)
			}
		}
	}
	for _, m := range serving.Members {
		if !seen[m.Name] {
			seen[m.Name] = true
			p.Members = append(p.Members, m.Name)
		}
	}
	if p.Forced {
		p.Warnings = append(p.Warnings, fmt.Sprintf("backend %s at site %s is unreachable: its replicas are force-promoted at %s and writes not yet replicated are lost",
			b.Name, b.Site, p.TargetBackend))
	}
	if p.Storage.Frozen || p.Recorded.Frozen {
		p.Warnings = append(p.Warnings, fmt.Sprintf("backend %s was already frozen; the run thaws it at the end", b.Name))
	}
	if p.Recorded.Status == ferry.ReplicationFailoverErr || p.Storage.Status == ferry.ReplicationFailoverErr {
		p.Warnings = append(p.Warnings, fmt.Sprintf("backend %s is in failover-error from an earlier run", b.Name))
	}
	return p, nil
}

// FreezeBackendInput freezes a backend before its failover.
type FreezeBackendInput struct {
	Key     string `json:"key"`
	Backend string `json:"backend"`
	// StorageActiveID and RecordedActiveID are kept while the status is
	// failing-over.
	StorageActiveID  string `json:"storage_active_id"`
	RecordedActiveID string `json:"recorded_active_id"`
	// TolerateUnreachable: the backend's site is down (a forced failover);
	// it is recorded frozen in the inventory only.
	TolerateUnreachable bool `json:"tolerate_unreachable,omitempty"`
}

// FreezeResult says whether the storage itself was frozen.
type FreezeResult struct {
	Frozen bool `json:"frozen"`
}

// FreezeBackend freezes a backend (no management change is taken until it
// is thawed), sets its replication_status to failing-over, and records both
// in the inventory, where the API refuses mutating runs of its groups.
func (a *Activities) FreezeBackend(ctx context.Context, in FreezeBackendInput) (FreezeResult, error) {
	var res FreezeResult
	err := a.Drivers.Storage.Freeze(ctx, in.Key+"/freeze", in.Backend)
	switch {
	case err == nil:
		res.Frozen = true
		if err := a.Drivers.Storage.SetReplicationStatus(ctx, in.Key+"/status", in.Backend, ferry.ReplicationFailingOver, in.StorageActiveID); err != nil {
			return res, wrap("set replication_status of "+in.Backend, err)
		}
	case in.TolerateUnreachable && drivers.Kind(err) == drivers.Unreachable:
	default:
		return res, wrap("freeze "+in.Backend, err)
	}
	if err := a.Store.SetBackendState(ctx, in.Backend, ferry.ReplicationFailingOver, in.RecordedActiveID, true); err != nil {
		return res, fmt.Errorf("freeze %s: record in the inventory: %w", in.Backend, err)
	}
	return res, nil
}

// ThawBackendInput thaws a backend, at the end of its failover or as the
// rollback of its freeze.
type ThawBackendInput struct {
	Key     string `json:"key"`
	Backend string `json:"backend"`
	// Restore, on a rollback, puts back the bookkeeping the run found.
	Restore *BackendRestore `json:"restore,omitempty"`
	// TolerateUnreachable: the backend's site is down; it is thawed in
	// the inventory only.
	TolerateUnreachable bool `json:"tolerate_unreachable,omitempty"`
}

// BackendRestore is a backend's bookkeeping before a run, at the storage
// and in the inventory.
type BackendRestore struct {
	Storage  BackendBookkeeping `json:"storage"`
	Recorded BackendBookkeeping `json:"recorded"`
}

// ThawBackend lifts a freeze at the storage and in the inventory. On a
// rollback it first restores the replication_status the run found, and
// leaves frozen a backend that was frozen before the run.
func (a *Activities) ThawBackend(ctx context.Context, in ThawBackendInput) error {
	tolerate := func(err error) error {
		if in.TolerateUnreachable && drivers.Kind(err) == drivers.Unreachable {
			return nil
		}
		return err
	}
	if r := in.Restore; r != nil {
		if err := tolerate(a.Drivers.Storage.SetReplicationStatus(ctx, in.Key+"/status", in.Backend, r.Storage.Status, r.Storage.ActiveID)); err != nil {
			return wrap("restore replication_status of "+in.Backend, err)
		}
		if !r.Storage.Frozen {
			if err := tolerate(a.Drivers.Storage.Thaw(ctx, in.Key+"/thaw", in.Backend)); err != nil {
				return wrap("thaw "+in.Backend, err)
			}
		}
		if err := a.Store.SetBackendState(ctx, in.Backend, r.Recorded.Status, r.Recorded.ActiveID, r.Recorded.Frozen); err != nil {
			return fmt.Errorf("restore %s in the inventory: %w", in.Backend, err)
		}
		return nil
	}
	if err := tolerate(a.Drivers.Storage.Thaw(ctx, in.Key+"/thaw", in.Backend)); err != nil {
		return wrap("thaw "+in.Backend, err)
	}
	b, err := a.Store.GetBackend(ctx, in.Backend)
	if err != nil {
		return fmt.Errorf("thaw %s: read the inventory: %w", in.Backend, err)
	}
	if err := a.Store.SetBackendState(ctx, in.Backend, b.ReplicationStatus, b.ActiveBackendID, false); err != nil {
		return fmt.Errorf("thaw %s in the inventory: %w", in.Backend, err)
	}
	return nil
}

// HostFailoverInput fails a whole backend over at the storage.
type HostFailoverInput struct {
	Key      string `json:"key"`
	Backend  string `json:"backend"`
	TargetID string `json:"target_id"`
}

// FailoverHost is Cinder's failover_host at the storage: one call for the
// whole backend, heartbeating while the storage works.
func (a *Activities) FailoverHost(ctx context.Context, in HostFailoverInput) (drivers.HostFailoverResult, error) {
	if a.Drivers.Host == nil {
		return drivers.HostFailoverResult{}, temporal.NewNonRetryableApplicationError("the storage adapter cannot fail over a whole backend", ErrPermanent, nil)
	}
	var res drivers.HostFailoverResult
	err := heartbeatDuring(ctx, in.Backend, func() error {
		var err error
		res, err = a.Drivers.Host.FailoverHost(ctx, in.Key, in.Backend, in.TargetID)
		return err
	})
	return res, wrap("failover_host "+in.Backend+" to "+in.TargetID, err)
}

// BackendStatusInput records a backend's replication_status and
// active_backend_id at the storage and in the inventory.
type BackendStatusInput struct {
	Key             string `json:"key"`
	Backend         string `json:"backend"`
	Status          string `json:"status"`
	ActiveBackendID string `json:"active_backend_id"`
	// Frozen is what the inventory records (the backend stays frozen
	// until the thaw step).
	Frozen bool `json:"frozen"`
	// TolerateUnreachable: the backend's site is down; only the inventory
	// can be written.
	TolerateUnreachable bool `json:"tolerate_unreachable,omitempty"`
}

// BackendStatusResult says where the status was written.
type BackendStatusResult struct {
	AtStorage bool `json:"at_storage"`
}

// SetBackendStatus writes a backend's replication_status at the storage and
// in the inventory. Any error in either leaves the status failover-error
// (as far as it can still be written) and fails with both causes: a
// failover is never reported done when its bookkeeping is not.
func (a *Activities) SetBackendStatus(ctx context.Context, in BackendStatusInput) (BackendStatusResult, error) {
	var res BackendStatusResult
	// Each attempt writes anew: under the first attempt's key the storage
	// would only replay it, after a failure marked it failover-error.
	key := fmt.Sprintf("%s/attempt-%d", in.Key, activity.GetInfo(ctx).Attempt)
	err := a.Drivers.Storage.SetReplicationStatus(ctx, key+"/storage", in.Backend, in.Status, in.ActiveBackendID)
	switch {
	case err == nil:
		res.AtStorage = true
	case in.TolerateUnreachable && drivers.Kind(err) == drivers.Unreachable:
		err = nil
	default:
		err = wrap("set replication_status of "+in.Backend+" at the storage", err)
	}
	if err == nil {
		if derr := a.Store.SetBackendState(ctx, in.Backend, in.Status, in.ActiveBackendID, in.Frozen); derr != nil {
			err = fmt.Errorf("record replication_status of %s in the inventory: %w", in.Backend, derr)
		}
	}
	if err == nil || in.Status == ferry.ReplicationFailoverErr {
		return res, err
	}
	// Say failover-error wherever it can still be said.
	var also []string
	if serr := a.Drivers.Storage.SetReplicationStatus(ctx, key+"/failover-error", in.Backend, ferry.ReplicationFailoverErr, in.ActiveBackendID); serr != nil {
		also = append(also, "at the storage: "+serr.Error())
	}
	if derr := a.Store.SetBackendState(ctx, in.Backend, ferry.ReplicationFailoverErr, in.ActiveBackendID, in.Frozen); derr != nil {
		also = append(also, "in the inventory: "+derr.Error())
	}
	msg := fmt.Sprintf("%s; replication_status is %s", errMessage(err), ferry.ReplicationFailoverErr)
	if len(also) > 0 {
		msg += " where it could be written (not " + strings.Join(also, "; ") + ")"
	}
	if isNonRetryable(err) {
		return res, temporal.NewNonRetryableApplicationError(msg, ErrPermanent, nil)
	}
	return res, temporal.NewApplicationError(msg, drivers.Retryable)
}

func errMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

func isNonRetryable(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable()
}

// SharePlanInput asks SharePrecheck to plan the promote of one share
// replica.
type SharePlanInput struct {
	Group string `json:"group,omitempty"`
	Share string `json:"share"`
	// Target is the site or the backend of the replica to promote; "" is
	// the share's only other replica.
	Target string `json:"target,omitempty"`
}

// SharePlan is what a share promote will do.
type SharePlan struct {
	Group         ferry.Group `json:"group"`
	Share         string      `json:"share"`
	ActiveBackend string      `json:"active_backend"`
	ActiveSite    string      `json:"active_site"`
	TargetBackend string      `json:"target_backend"`
	TargetSite    string      `json:"target_site"`
	Warnings      []string    `json:"warnings,omitempty"`
}

// SharePrecheck finds the share, its active replica and the one to promote.
// The promote is planned (no outage): the active replica must answer, and
// the chosen one must be a healthy secondary.
func (a *Activities) SharePrecheck(ctx context.Context, in SharePlanInput) (SharePlan, error) {
	g, err := a.groupOfShare(ctx, in.Group, in.Share)
	if err != nil {
		return SharePlan{}, err
	}
	p := SharePlan{Group: withoutHookTargets(g), Share: in.Share}
	st, err := a.Drivers.Storage.ReplicationStatus(ctx, []string{in.Share})
	if err != nil {
		return SharePlan{}, wrap("precheck: replication status of "+in.Share, err)
	}
	var candidates []drivers.ReplicaStatus
	for _, r := range st {
		if r.State == ferry.ReplicaActive {
			p.ActiveBackend, p.ActiveSite = r.Backend, r.Site
			continue
		}
		if in.Target == "" || in.Target == r.Site || in.Target == r.Backend {
			candidates = append(candidates, r)
		}
	}
	if p.ActiveBackend == "" {
		return SharePlan{}, precheckErr("share %s has no reachable active replica: promoting without an outage needs it (fail the group over instead)", in.Share)
	}
	switch {
	case in.Target == p.ActiveSite || in.Target == p.ActiveBackend:
		return SharePlan{}, precheckErr("the replica of %s at %s is already the active one", in.Share, in.Target)
	case len(candidates) == 0 && in.Target != "":
		return SharePlan{}, precheckErr("share %s has no replica at %q", in.Share, in.Target)
	case len(candidates) == 0:
		return SharePlan{}, precheckErr("share %s has no replica to promote", in.Share)
	case len(candidates) > 1:
		var where []string
		for _, c := range candidates {
			where = append(where, c.Site+" ("+c.Backend+")")
		}
		return SharePlan{}, precheckErr("share %s has several replicas (%s): name the target", in.Share, strings.Join(where, ", "))
	}
	c := candidates[0]
	switch c.State {
	case ferry.ReplicaError:
		return SharePlan{}, precheckErr("the replica of %s at %s is in error: resync it first", in.Share, c.Site)
	case ferry.ReplicaOutOfSync:
		p.Warnings = append(p.Warnings, fmt.Sprintf("the replica of %s at %s is out_of_sync (lag %s): the promote hands it the active's writes first", in.Share, c.Site, c.Lag))
	}
	p.TargetBackend, p.TargetSite = c.Backend, c.Site
	return p, nil
}

// groupOfShare returns the group holding share: the named one, or the one
// whose shares list it.
func (a *Activities) groupOfShare(ctx context.Context, group, share string) (ferry.Group, error) {
	has := func(g ferry.Group) bool {
		for _, s := range g.Shares {
			if s.Name == share {
				return true
			}
		}
		return false
	}
	if group != "" {
		g, err := a.Store.GetGroup(ctx, group)
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return ferry.Group{}, precheckErr("group %q does not exist", group)
		} else if err != nil {
			return ferry.Group{}, fmt.Errorf("precheck: %w", err)
		}
		if !has(g) {
			return ferry.Group{}, precheckErr("group %s has no share %q", group, share)
		}
		return g, nil
	}
	page := ferry.Page{Limit: 100}
	for {
		gs, next, err := a.Store.ListGroups(ctx, page)
		if err != nil {
			return ferry.Group{}, fmt.Errorf("precheck: %w", err)
		}
		for _, g := range gs {
			if has(g) {
				return g, nil
			}
		}
		if next == "" {
			return ferry.Group{}, precheckErr("share %q is not a share of any group", share)
		}
		page.Token = next
	}
}

// ShareStatesInput reads a share's replicas after a promote.
type ShareStatesInput struct {
	Group string `json:"group"`
	Share string `json:"share"`
}

// ShareReplicaStates reads every replica of the share, records them in the
// inventory, and fails (retryably: the retry policy is the wait) while a
// secondary is still out_of_sync, as Manila's periodic update moves a
// demoted active to in_sync once it has caught up. A replica in error does
// not heal by waiting and is reported, not waited for.
func (a *Activities) ShareReplicaStates(ctx context.Context, in ShareStatesInput) ([]ferry.Replica, error) {
	st, err := a.Drivers.Storage.ReplicationStatus(ctx, []string{in.Share})
	if err != nil {
		return nil, wrap("replication status of "+in.Share, err)
	}
	out := make([]ferry.Replica, 0, len(st))
	var behind []string
	for _, r := range st {
		out = append(out, ferry.Replica{Group: in.Group, Resource: r.Resource, Kind: "share", Site: r.Site, Backend: r.Backend,
			State: r.State, Seq: r.Seq, LagSecs: r.Lag.Seconds(), Observed: time.Now().UTC()})
		if r.State == ferry.ReplicaOutOfSync {
			behind = append(behind, r.Site)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	if err := a.Store.PutReplicas(ctx, in.Group, out); err != nil {
		return nil, fmt.Errorf("record replicas of %s: %w", in.Share, err)
	}
	if len(behind) > 0 {
		return out, temporal.NewApplicationError(fmt.Sprintf("replicas of %s at %s are still out_of_sync", in.Share, strings.Join(behind, ", ")), drivers.Retryable)
	}
	return out, nil
}
