package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// PlanInput asks Precheck to plan a failover.
type PlanInput struct {
	Group      string `json:"group"`
	Mode       string `json:"mode"`
	TargetSite string `json:"target_site,omitempty"`
}

// Batch is the unit of storage work: the resources of a group that one
// source backend replicates to one target backend. One activity handles a
// whole batch, never one volume (DESIGN.md section 10).
type Batch struct {
	Source        string   `json:"source"`         // backend at the source site
	Target        string   `json:"target"`         // backend at the target site
	TargetID      string   `json:"target_id"`      // the replication target id (Cinder backend_id)
	TargetMembers []string `json:"target_members"` // cluster members serving Target
	Resources     []string `json:"resources"`
}

// ID names the batch in idempotency keys: its source and target, since two
// batches may share either one.
func (b Batch) ID() string { return b.Source + "->" + b.Target }

// Plan is what a failover will do, fixed at precheck so the run's history
// shows it and later steps do not re-read a changing inventory.
type Plan struct {
	Group            ferry.Group `json:"group"`
	SourceSite       string      `json:"source_site"`
	TargetSite       string      `json:"target_site"`
	Batches          []Batch     `json:"batches"`
	PrimaryReachable bool        `json:"primary_reachable"`
	// Warnings are preconditions that do not stop the run but go in its
	// record (an out_of_sync replica in a planned run, an unreachable primary).
	Warnings []string `json:"warnings,omitempty"`
}

// Precondition is one thing a run needs, checked: what a dry run reports
// and what a precheck refuses on.
type Precondition struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// Assessment is a failover's plan with every precondition checked.
type Assessment struct {
	Plan          Plan           `json:"plan"`
	Preconditions []Precondition `json:"preconditions"`
	replicas      []ferry.Replica
}

// Precheck reads the group and its backends, decides the batches, and checks
// the storage: the target side must answer and hold every replica; a planned
// failover also needs the source side. An unplanned one tolerates an
// unreachable source. It refuses on the first unmet precondition.
func (a *Activities) Precheck(ctx context.Context, in PlanInput) (Plan, error) {
	as, err := a.assess(ctx, in)
	if err != nil {
		return Plan{}, err
	}
	for _, c := range as.Preconditions {
		if !c.Passed {
			return Plan{}, precheckErr("%s: %s", c.Name, c.Detail)
		}
	}
	if len(as.replicas) > 0 {
		if err := a.Store.PutReplicas(ctx, as.Plan.Group.Name, as.replicas); err != nil {
			return Plan{}, fmt.Errorf("precheck: record replicas: %w", err)
		}
	}
	return as.Plan, nil
}

// AssessFailover checks every precondition of a failover and writes
// nothing: the dry run.
func (a *Activities) AssessFailover(ctx context.Context, in PlanInput) (Assessment, error) {
	return a.assess(ctx, in)
}

// assess plans a failover and checks its preconditions, going on past an
// unmet one where it can so a dry run shows them all. Its error is for a
// failure to check (the store does not answer), not an unmet precondition.
func (a *Activities) assess(ctx context.Context, in PlanInput) (Assessment, error) {
	var as Assessment
	check := func(name string, passed bool, format string, args ...any) bool {
		c := Precondition{Name: name, Passed: passed}
		if !passed {
			c.Detail = fmt.Sprintf(format, args...)
		}
		as.Preconditions = append(as.Preconditions, c)
		return passed
	}
	g, err := a.Store.GetGroup(ctx, in.Group)
	if ferry.ErrorCode(err) == ferry.ENotFound {
		check("group exists", false, "%v", err)
		return as, nil
	} else if err != nil {
		return as, fmt.Errorf("precheck: %w", err)
	}
	p := Plan{Group: withoutHookTargets(g), SourceSite: g.PrimarySite, TargetSite: g.DRSite}
	if g.ActiveSite != "" {
		p.SourceSite = g.ActiveSite
	}
	if in.TargetSite != "" {
		p.TargetSite = in.TargetSite
	}
	if !check("target differs from the active site", p.SourceSite != p.TargetSite, "group %s already runs at site %s", g.Name, p.TargetSite) {
		as.Plan = p
		return as, nil
	}

	batches := map[string]*Batch{}
	var order []string
	routed := true
	// Routes depend on the backend only: read each backend's once, not
	// once per volume (a group of 40 volumes on 2 backends made 80 store
	// round trips here).
	type route struct {
		src ferry.Backend
		dst routeTarget
		err error
	}
	routes := map[string]route{}
	// readErr is a failure to read the inventory: the assessment cannot be
	// made, which is not an unmet precondition.
	var readErr error
	add := func(resource, primaryBackend string) {
		r, ok := routes[primaryBackend]
		if !ok {
			r.src, r.dst, r.err = a.route(ctx, primaryBackend, p.SourceSite, p.TargetSite)
			routes[primaryBackend] = r
		}
		src, dst, err := r.src, r.dst, r.err
		if err != nil && !isPrecheck(err) {
			if readErr == nil {
				readErr = err
			}
			return
		}
		if err != nil {
			routed = check("route of "+resource, false, "%s", message(err))
			return
		}
		key := src.Name + "->" + dst.backend.Name
		b, ok := batches[key]
		if !ok {
			b = &Batch{Source: src.Name, Target: dst.backend.Name, TargetID: dst.id, TargetMembers: dst.backend.Members}
			batches[key] = b
			order = append(order, key)
		}
		b.Resources = append(b.Resources, resource)
	}
	for _, v := range g.Volumes {
		add(v.Name, v.Backend)
	}
	for _, sh := range g.Shares {
		add(sh.Name, sh.Backend)
	}
	if readErr != nil {
		return as, readErr
	}
	sort.Strings(order)
	for _, k := range order {
		p.Batches = append(p.Batches, *batches[k])
	}
	as.Plan = p
	if !routed {
		return as, nil
	}

	// The target side must answer: a failover to a site we cannot reach
	// cannot succeed, and failing now costs nothing. A planned failover
	// needs the source too; an unplanned one fences it instead.
	p.PrimaryReachable = true
	for _, b := range p.Batches {
		st, err := a.Drivers.Storage.BackendStatus(ctx, b.Target)
		check("target backend "+b.Target+" reachable", err == nil && st.Reachable, "backend at site %s does not answer: %v", p.TargetSite, errText(err))
		src, err := a.Drivers.Storage.BackendStatus(ctx, b.Source)
		if err != nil || !src.Reachable {
			if in.Mode == ferry.ModePlanned {
				check("source backend "+b.Source+" reachable", false,
					"a planned failover needs it (%v); start an unplanned failover instead", errText(err))
			}
			p.PrimaryReachable = false
		}
	}
	if !p.PrimaryReachable {
		p.Warnings = append(p.Warnings, fmt.Sprintf("primary site %s is unreachable: its replicas will be fenced and the latest consistent point force-promoted", p.SourceSite))
	}

	// Every resource must have a usable replica at the target.
	var resources []string
	for _, b := range p.Batches {
		resources = append(resources, b.Resources...)
	}
	status, err := a.Drivers.Storage.ReplicationStatus(ctx, resources)
	if err != nil && p.PrimaryReachable {
		check("replication status readable", false, "%v", err)
	}
	atTarget := map[string]drivers.ReplicaStatus{}
	now := time.Now().UTC()
	for _, r := range status {
		if r.Site == p.TargetSite {
			atTarget[r.Resource] = r
		}
		as.replicas = append(as.replicas, ferry.Replica{
			Group: g.Name, Resource: r.Resource, Kind: resourceKind(g, r.Resource), Site: r.Site,
			Backend: r.Backend, State: r.State, Seq: r.Seq, LagSecs: r.Lag.Seconds(), Observed: now,
		})
	}
	for _, res := range resources {
		r, ok := atTarget[res]
		name := "replica of " + res + " at " + p.TargetSite
		switch {
		case !ok:
			check(name, false, "%s has no replica at site %s", res, p.TargetSite)
		case r.State == ferry.ReplicaError:
			check(name, false, "the replica is in error")
		case r.Suspended:
			check(name, true, "")
			p.Warnings = append(p.Warnings, fmt.Sprintf("replication of %s to %s is suspended: the replica is stale (lag %s)", res, p.TargetSite, r.Lag.Round(time.Second)))
		case r.State == ferry.ReplicaOutOfSync:
			check(name, true, "")
			p.Warnings = append(p.Warnings, fmt.Sprintf("replica of %s at %s is out_of_sync (lag %s)", res, p.TargetSite, r.Lag.Round(time.Second)))
		default:
			check(name, true, "")
		}
	}
	as.Plan = p
	return as, nil
}

func errText(err error) string {
	if err == nil {
		return "unreachable"
	}
	return err.Error()
}

// message is an error's text without Temporal's wrapping.
func message(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

type routeTarget struct {
	backend ferry.Backend
	id      string
}

// route finds, for a resource whose primary copy lives on primaryBackend,
// the backend that holds it at the source site now and the one at the target
// site. After a failover the group's source is its DR site, so the route is
// walked from whichever side the group runs on.
func (a *Activities) route(ctx context.Context, primaryBackend, sourceSite, targetSite string) (ferry.Backend, routeTarget, error) {
	primary, err := a.Store.GetBackend(ctx, primaryBackend)
	if err != nil {
		return ferry.Backend{}, routeTarget{}, storeErr(err, "backend %s", primaryBackend)
	}
	// Backends one hop from the primary: the primary itself and its targets.
	candidates := map[string]ferry.Backend{primary.Name: primary}
	targetIDs := map[string]string{primary.Name: ferry.ActiveBackendDefault}
	for _, t := range primary.ReplicationTargets {
		b, err := a.Store.GetBackend(ctx, t.Backend)
		if err != nil {
			return ferry.Backend{}, routeTarget{}, storeErr(err, "replication target %s of %s", t.Backend, primary.Name)
		}
		candidates[b.Name] = b
		targetIDs[b.Name] = t.ID
	}
	var src ferry.Backend
	var dst routeTarget
	names := make([]string, 0, len(candidates))
	for n := range candidates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := candidates[n]
		if b.Site == sourceSite && src.Name == "" {
			src = b
		}
		if b.Site == targetSite && dst.backend.Name == "" {
			dst = routeTarget{backend: b, id: targetIDs[n]}
		}
	}
	if src.Name == "" {
		return ferry.Backend{}, routeTarget{}, precheckErr("backend %s has no copy at source site %s", primaryBackend, sourceSite)
	}
	if dst.backend.Name == "" {
		return ferry.Backend{}, routeTarget{}, precheckErr("backend %s does not replicate to site %s", primaryBackend, targetSite)
	}
	return src, dst, nil
}

func resourceKind(g ferry.Group, name string) string {
	for _, s := range g.Shares {
		if s.Name == name {
			return "share"
		}
	}
	return "volume"
}

// storeErr is a failed read of the inventory: a missing item is the
// precheck's refusal; anything else (the database restarting, a dropped
// connection) is an error the activity's retries wait out, never a reason
// to refuse the run.
func storeErr(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if ferry.ErrorCode(err) == ferry.ENotFound {
		return precheckErr("%s: %v", what, err)
	}
	return fmt.Errorf("precheck: read %s: %w", what, err)
}

// isPrecheck says whether err is a precheck's refusal rather than a
// failure to check.
func isPrecheck(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == ErrPrecheck
}

func precheckErr(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError("precheck: "+fmt.Sprintf(format, args...), ErrPrecheck, nil)
}

// ServersInput names servers at a site.
type ServersInput struct {
	Key     string   `json:"key"`
	Site    string   `json:"site"`
	Servers []string `json:"servers"`
}

// Quiesce freezes the guests' file systems (fsfreeze/VSS).
func (a *Activities) Quiesce(ctx context.Context, in ServersInput) error {
	return wrap("quiesce", a.Drivers.Compute.Quiesce(ctx, in.Key, in.Site, in.Servers))
}

// Unquiesce thaws the guests' file systems.
func (a *Activities) Unquiesce(ctx context.Context, in ServersInput) error {
	return wrap("unquiesce", a.Drivers.Compute.Unquiesce(ctx, in.Key, in.Site, in.Servers))
}

// StopServers stops servers (the primaries, before demote).
func (a *Activities) StopServers(ctx context.Context, in ServersInput) error {
	return wrap("stop servers", a.Drivers.Compute.Stop(ctx, in.Key, in.Site, in.Servers))
}

// StartServers starts stopped servers again (compensation).
func (a *Activities) StartServers(ctx context.Context, in ServersInput) error {
	return wrap("start servers", a.Drivers.Compute.Start(ctx, in.Key, in.Site, in.Servers))
}

// BatchInput is a storage call on one batch.
type BatchInput struct {
	Key   string `json:"key"`
	Batch Batch  `json:"batch"`
}

// Snapshot takes the consistency-group snapshot of a batch on its source.
func (a *Activities) Snapshot(ctx context.Context, in BatchInput) (drivers.Snapshot, error) {
	var s drivers.Snapshot
	err := a.onBackend(ctx, in.Batch.Source, func() error {
		var err error
		s, err = a.Drivers.Storage.SnapshotGroup(ctx, in.Key, in.Batch.Source, in.Batch.Resources)
		return err
	})
	return s, wrap("snapshot "+in.Batch.Source, err)
}

// SyncInput is a final sync up to a snapshot.
type SyncInput struct {
	Key      string           `json:"key"`
	Batch    Batch            `json:"batch"`
	Snapshot drivers.Snapshot `json:"snapshot"`
}

// FinalSync replicates once more and waits until every target replica holds
// the snapshot; a replica still behind is a retryable error, so Temporal's
// retry policy is the wait loop.
func (a *Activities) FinalSync(ctx context.Context, in SyncInput) error {
	// Each attempt is a new sync: under the same key an adapter would only
	// replay the first, stale answer.
	key := fmt.Sprintf("%s/attempt-%d", in.Key, activity.GetInfo(ctx).Attempt)
	var st []drivers.ReplicaStatus
	err := a.onBackend(ctx, in.Batch.Source, func() error {
		var err error
		st, err = a.Drivers.Storage.Sync(ctx, key, in.Batch.Source, in.Batch.Resources)
		return err
	})
	if err != nil {
		return wrap("final sync "+in.Batch.Source, err)
	}
	var behind []string
	for _, res := range in.Batch.Resources {
		want := in.Snapshot.Seqs[res]
		ok := false
		for _, r := range st {
			if r.Resource == res && r.Backend == in.Batch.Target && r.Seq >= want {
				ok = true
			}
		}
		if !ok {
			behind = append(behind, res)
		}
	}
	if len(behind) > 0 {
		return temporal.NewApplicationError(fmt.Sprintf("final sync: %s not yet at the snapshot on %s", strings.Join(behind, ", "), in.Batch.Target), drivers.Retryable)
	}
	return nil
}

// Demote makes the batch's source replicas read-only secondaries.
func (a *Activities) Demote(ctx context.Context, in BatchInput) error {
	return wrap("demote "+in.Batch.Source, a.onBackend(ctx, in.Batch.Source, func() error {
		return a.Drivers.Storage.Demote(ctx, in.Key, in.Batch.Source, in.Batch.Resources)
	}))
}

// Undemote makes the source replicas active again (compensation of Demote).
func (a *Activities) Undemote(ctx context.Context, in BatchInput) error {
	err := a.onBackend(ctx, in.Batch.Source, func() error {
		_, err := a.Drivers.Storage.Promote(ctx, in.Key, in.Batch.Source, in.Batch.Resources, false)
		return err
	})
	return wrap("undo demote "+in.Batch.Source, err)
}

// FenceInput fences a source backend under an epoch.
type FenceInput struct {
	Key     string `json:"key"`
	Backend string `json:"backend"`
	Epoch   int64  `json:"epoch"`
}

// FenceResult says what fencing achieved.
type FenceResult struct {
	Frozen bool `json:"frozen"`
}

// Fence freezes a backend if it answers and fences it under the epoch, so
// that a returning old primary accepts no writes (invariant 1). Freezing an
// unreachable backend is impossible and not needed once it is fenced;
// fencing itself must succeed.
func (a *Activities) Fence(ctx context.Context, in FenceInput) (FenceResult, error) {
	var res FenceResult
	if err := a.Drivers.Storage.Freeze(ctx, in.Key+"/freeze", in.Backend); err == nil {
		res.Frozen = true
	} else if drivers.Kind(err) != drivers.Unreachable {
		return res, wrap("freeze "+in.Backend, err)
	}
	return res, wrap("fence "+in.Backend, a.Drivers.Storage.Fence(ctx, in.Key+"/fence", in.Backend, in.Epoch))
}

// Unfence undoes Fence (compensation before promote).
func (a *Activities) Unfence(ctx context.Context, in FenceInput) error {
	if err := a.Drivers.Storage.Unfence(ctx, in.Key+"/unfence", in.Backend, in.Epoch); err != nil {
		return wrap("unfence "+in.Backend, err)
	}
	err := a.Drivers.Storage.Thaw(ctx, in.Key+"/thaw", in.Backend)
	if drivers.Kind(err) == drivers.Unreachable {
		return nil
	}
	return wrap("thaw "+in.Backend, err)
}

// PromoteInput promotes a batch at its target.
type PromoteInput struct {
	Key   string `json:"key"`
	Batch Batch  `json:"batch"`
	Force bool   `json:"force"`
}

// Promote makes the target replicas of a batch active.
func (a *Activities) Promote(ctx context.Context, in PromoteInput) (drivers.PromoteResult, error) {
	var r drivers.PromoteResult
	// The wait for a slot heartbeats too: it is not a dead worker.
	err := heartbeatDuring(ctx, in.Batch.Target, func() error {
		return a.onBackend(ctx, in.Batch.Target, func() error {
			var err error
			r, err = a.Drivers.Storage.Promote(ctx, in.Key, in.Batch.Target, in.Batch.Resources, in.Force)
			return err
		})
	})
	return r, wrap("promote "+in.Batch.Target, err)
}

// CompletedInput tells a backend's cluster members that it failed over.
type CompletedInput struct {
	Key             string   `json:"key"`
	Backend         string   `json:"backend"`
	Members         []string `json:"members"`
	ActiveBackendID string   `json:"active_backend_id"`
}

// FailoverCompleted sends failover_completed to every member of a backend's
// active-active cluster at once, then reads each member's active_backend_id
// back: a member that did not answer, or answers with the old id, fails the
// activity with the list of laggards (invariant 2).
func (a *Activities) FailoverCompleted(ctx context.Context, in CompletedInput) error {
	var mu sync.Mutex
	failed := map[string]string{}
	permanent := 0
	var wg sync.WaitGroup
	for _, m := range in.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Drivers.Storage.FailoverCompleted(ctx, in.Key+"/"+m, in.Backend, m, in.ActiveBackendID); err != nil {
				mu.Lock()
				failed[m] = err.Error()
				if drivers.IsPermanent(err) {
					permanent++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if v, ok := a.Drivers.Storage.(drivers.MemberVerifier); !ok || !v.VerifiesMembers() {
		st, err := a.Drivers.Storage.BackendStatus(ctx, in.Backend)
		if err != nil {
			return wrap("failover_completed: read members of "+in.Backend, err)
		}
		seen := map[string]string{}
		for _, m := range st.Members {
			seen[m.Name] = m.ActiveBackendID
		}
		for _, m := range in.Members {
			if _, bad := failed[m]; bad {
				continue
			}
			if got, ok := seen[m]; !ok || got != in.ActiveBackendID {
				failed[m] = fmt.Sprintf("active_backend_id is %q, want %q", got, in.ActiveBackendID)
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	names := make([]string, 0, len(failed))
	for m := range failed {
		names = append(names, m)
	}
	sort.Strings(names)
	var parts []string
	for _, m := range names {
		parts = append(parts, m+" ("+failed[m]+")")
	}
	msg := fmt.Sprintf("failover_completed not acknowledged by %s", strings.Join(parts, "; "))
	// The message names every laggard, so the run records exactly who an
	// operator's skip leaves behind. Members that refused for good will
	// refuse again: no point retrying them.
	if permanent == len(failed) {
		return temporal.NewNonRetryableApplicationError(msg, ErrNotAcked, nil, names)
	}
	return temporal.NewApplicationError(msg, ErrNotAcked, names)
}

// NetworkInput maps networks at a site.
type NetworkInput struct {
	Key      string                   `json:"key"`
	Site     string                   `json:"site"`
	Mappings []drivers.NetworkMapping `json:"mappings"`
}

// MapNetworks makes the DR networks ready at the target site.
func (a *Activities) MapNetworks(ctx context.Context, in NetworkInput) error {
	return wrap("map networks", a.Drivers.Network.MapNetworks(ctx, in.Key, in.Site, in.Mappings))
}

// BootInput boots one tier at a site.
type BootInput struct {
	Key     string             `json:"key"`
	Site    string             `json:"site"`
	Tier    string             `json:"tier"`
	Servers []drivers.BootSpec `json:"servers"`
	// Poll is how often health is read while waiting.
	Poll time.Duration `json:"poll"`
}

// BootTier boots every server of a tier and returns when all are healthy,
// heartbeating how many are. One activity per tier, not per server: the
// compute endpoint does the servers concurrently. With a boot wave set
// (FERRY_MAX_BOOTS_PER_TIER) at most that many servers of the tier boot at
// once: each wave boots when the one before it is healthy, under a key of
// its own, so a retried activity replays the waves already booted.
func (a *Activities) BootTier(ctx context.Context, in BootInput) error {
	wave := len(in.Servers)
	if a.BootWave > 0 && a.BootWave < wave {
		wave = a.BootWave
	}
	// An empty tier still makes its (empty) boot call, as it always has.
	for i := 0; i == 0 || i < len(in.Servers); i += max(wave, 1) {
		specs := in.Servers[i:min(i+wave, len(in.Servers))]
		key := in.Key
		if wave < len(in.Servers) {
			key = fmt.Sprintf("%s/wave-%d", in.Key, i/wave+1)
		}
		if err := a.Drivers.Compute.Boot(ctx, key, in.Site, specs); err != nil {
			return wrap("boot tier "+in.Tier, err)
		}
		if err := a.waitHealthy(ctx, in, specs, i); err != nil {
			return err
		}
	}
	return nil
}

// waitHealthy polls the health of the servers of specs until all are
// healthy; done servers of the tier are already healthy before them.
func (a *Activities) waitHealthy(ctx context.Context, in BootInput, specs []drivers.BootSpec, done int) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	poll := in.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for {
		hs, err := a.Drivers.Compute.Health(ctx, in.Site, names)
		if err != nil {
			return wrap("health of tier "+in.Tier, err)
		}
		var waiting []string
		for _, h := range hs {
			if h.State == drivers.ServerError {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("server %s failed to boot at %s", h.Name, in.Site), ErrPermanent, nil)
			}
			if !h.Healthy {
				waiting = append(waiting, h.Name)
			}
		}
		activity.RecordHeartbeat(ctx, fmt.Sprintf("%d/%d healthy", done+len(names)-len(waiting), len(in.Servers)))
		if len(waiting) == 0 && len(hs) == len(names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tier %s: waiting for %s: %w", in.Tier, strings.Join(waiting, ", "), ctx.Err())
		case <-time.After(poll):
		}
	}
}

// DNSInput repoints records.
type DNSInput struct {
	Key     string           `json:"key"`
	Records []drivers.Record `json:"records"`
}

// RepointDNS replaces each record whose value differs from the wanted one.
func (a *Activities) RepointDNS(ctx context.Context, in DNSInput) error {
	for _, r := range in.Records {
		cur, err := a.Drivers.DNS.Get(ctx, r.Name, r.Type)
		if err == nil && cur.Value == r.Value && cur.TTL == r.TTL {
			continue
		}
		if err := a.Drivers.DNS.Replace(ctx, in.Key+"/"+r.Type+"/"+r.Name, r); err != nil {
			return wrap("dns "+r.Name, err)
		}
	}
	return nil
}

// VerifyInput runs a group's checks from a network at a site.
type VerifyInput struct {
	Site    string              `json:"site"`
	Network string              `json:"network"`
	Checks  []drivers.CheckSpec `json:"checks"`
}

// Verify runs every check and fails if any fails, so the retry policy gives
// a service that is still warming up a little time.
func (a *Activities) Verify(ctx context.Context, in VerifyInput) ([]drivers.CheckResult, error) {
	var out []drivers.CheckResult
	var failed []string
	for _, c := range in.Checks {
		r, err := a.Drivers.Verify.Check(ctx, in.Site, in.Network, c)
		if err != nil {
			return out, wrap("check "+c.Name, err)
		}
		out = append(out, r)
		if !r.Passed {
			failed = append(failed, c.Name+": "+r.Detail)
		}
	}
	if len(failed) > 0 {
		return out, temporal.NewApplicationError("checks failed: "+strings.Join(failed, "; "), ErrChecks)
	}
	return out, nil
}

// RecordInput is a run's final record.
type RecordInput struct {
	Run ferry.Run `json:"run"`
	// ActiveSite, when set, is where the group runs now.
	ActiveSite string `json:"active_site,omitempty"`
}

// RecordRun stores a run's final record and, once a run has promoted (even
// if it then stopped short), where the group's active copies now are and
// its replicas' state (invariant 6).
func (a *Activities) RecordRun(ctx context.Context, in RecordInput) error {
	if in.ActiveSite != "" && in.Run.Group != "" {
		if err := a.Store.SetGroupActiveSite(ctx, in.Run.Group, in.ActiveSite); err != nil {
			return fmt.Errorf("record run: active site: %w", err)
		}
		if err := a.refreshReplicas(ctx, in.Run.Group); err != nil {
			activity.GetLogger(ctx).Warn("record run: replicas not refreshed", "error", err)
		}
	}
	if err := a.Store.FinishRun(ctx, in.Run); err != nil {
		return fmt.Errorf("record run %s: %w", in.Run.ID, err)
	}
	if a.Runs != nil {
		a.Runs.RunRecorded(in.Run)
	}
	return nil
}

func (a *Activities) refreshReplicas(ctx context.Context, group string) error {
	g, err := a.Store.GetGroup(ctx, group)
	if err != nil {
		return err
	}
	var names []string
	for _, v := range g.Volumes {
		names = append(names, v.Name)
	}
	for _, s := range g.Shares {
		names = append(names, s.Name)
	}
	st, err := a.Drivers.Storage.ReplicationStatus(ctx, names)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	rs := make([]ferry.Replica, 0, len(st))
	for _, r := range st {
		rs = append(rs, ferry.Replica{Group: group, Resource: r.Resource, Kind: resourceKind(g, r.Resource), Site: r.Site,
			Backend: r.Backend, State: r.State, Seq: r.Seq, LagSecs: r.Lag.Seconds(), Observed: now})
	}
	return a.Store.ReplaceReplicas(ctx, group, rs)
}

// heartbeatDuring heartbeats while fn runs, so a long driver call (a promote
// of many volumes) is told apart from a dead worker within the heartbeat
// timeout.
func heartbeatDuring(ctx context.Context, detail any, fn func() error) error {
	done := make(chan struct{})
	defer close(done)
	activity.RecordHeartbeat(ctx, detail)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, detail)
			}
		}
	}()
	return fn()
}
