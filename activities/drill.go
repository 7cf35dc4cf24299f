package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// A drill (test bubble) touches nothing in production: it creates an
// isolated bubble network at the DR site, clones the DR replicas' latest
// consistent point (replication keeps running), boots the clones inside the
// bubble and runs the group's checks there. Everything it creates is
// removed by DrillCleanup.

// DrillPlanInput asks DrillPrecheck to plan a drill.
type DrillPlanInput struct {
	Group string `json:"group"`
	// Run is the drill's own record, written at start so that a drill
	// started by a schedule (whose workflow id does not hold the group's
	// lock) shows in the run list and blocks other runs of the group.
	Run ferry.Run `json:"run"`
	// LockWorkflowID is the workflow id of the group's mutating runs: a
	// drill refuses to start while another workflow runs under it.
	LockWorkflowID string `json:"lock_workflow_id"`
}

// DrillBatch is the replicas of a group on one backend at the drill site:
// one clone call per batch, never one per volume.
type DrillBatch struct {
	Backend   string   `json:"backend"`
	Resources []string `json:"resources"`
}

// DrillPlan is what a drill will do, fixed at precheck.
type DrillPlan struct {
	Group ferry.Group `json:"group"`
	// SourceSite is where the group runs now; Site is where the drill
	// builds its bubble (the site holding the group's replicas).
	SourceSite string       `json:"source_site"`
	Site       string       `json:"site"`
	Batches    []DrillBatch `json:"batches"`
	Warnings   []string     `json:"warnings,omitempty"`
}

// DrillPrecheck writes the drill's run record, refuses while the group has
// another active run, and plans the drill: the site of the group's
// replicas, one batch per backend there, every replica usable, and no
// server of the group already at that site (the clones boot under the
// group's server names, which must not reach a production server).
func (a *Activities) DrillPrecheck(ctx context.Context, in DrillPlanInput) (DrillPlan, error) {
	g, err := a.Store.GetGroup(ctx, in.Group)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return DrillPlan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrPrecheck, nil)
		}
		return DrillPlan{}, fmt.Errorf("drill precheck: %w", err)
	}
	p := DrillPlan{Group: withoutHookTargets(g), SourceSite: g.PrimarySite, Site: g.DRSite}
	if g.ActiveSite != "" && g.ActiveSite != g.PrimarySite {
		p.SourceSite, p.Site = g.ActiveSite, g.PrimarySite
	}
	if p.SourceSite == p.Site {
		return DrillPlan{}, precheckErr("group %s has no replica site to drill at", g.Name)
	}

	// A dry run plans without a record of its own: it writes nothing.
	if rec := in.Run; rec.ID != "" {
		rec.Site = p.Site
		if err := a.Store.CreateRun(ctx, rec); err != nil {
			return DrillPlan{}, fmt.Errorf("drill precheck: record the run: %w", err)
		}
	}
	if err := a.refuseOtherRuns(ctx, in); err != nil {
		return DrillPlan{}, err
	}

	batches := map[string]*DrillBatch{}
	var resources []string
	add := func(resource, primaryBackend string) error {
		_, dst, err := a.route(ctx, primaryBackend, p.SourceSite, p.Site)
		if err != nil {
			return err
		}
		b := batches[dst.backend.Name]
		if b == nil {
			b = &DrillBatch{Backend: dst.backend.Name}
			batches[b.Backend] = b
		}
		b.Resources = append(b.Resources, resource)
		resources = append(resources, resource)
		return nil
	}
	for _, v := range g.Volumes {
		if err := add(v.Name, v.Backend); err != nil {
			return DrillPlan{}, err
		}
	}
	for _, s := range g.Shares {
		if err := add(s.Name, s.Backend); err != nil {
			return DrillPlan{}, err
		}
	}
	names := make([]string, 0, len(batches))
	for n := range batches {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p.Batches = append(p.Batches, *batches[n])
		st, err := a.Drivers.Storage.BackendStatus(ctx, n)
		if err != nil {
			return DrillPlan{}, wrap("drill precheck: backend "+n, err)
		}
		if !st.Reachable {
			return DrillPlan{}, precheckErr("backend %s at site %s is unreachable", n, p.Site)
		}
	}

	if len(resources) > 0 {
		status, err := a.Drivers.Storage.ReplicationStatus(ctx, resources)
		if err != nil {
			return DrillPlan{}, wrap("drill precheck: replication status", err)
		}
		at := map[string]drivers.ReplicaStatus{}
		for _, r := range status {
			if r.Site == p.Site {
				at[r.Resource] = r
			}
		}
		for _, res := range resources {
			r, ok := at[res]
			switch {
			case !ok:
				return DrillPlan{}, precheckErr("%s has no replica at site %s", res, p.Site)
			case r.State == ferry.ReplicaError:
				return DrillPlan{}, precheckErr("replica of %s at site %s is in error", res, p.Site)
			case r.State == ferry.ReplicaActive:
				return DrillPlan{}, precheckErr("replica of %s at site %s is the active one: a drill clones replicas, never production", res, p.Site)
			case r.State == ferry.ReplicaOutOfSync:
				p.Warnings = append(p.Warnings, fmt.Sprintf("replica of %s at %s is out_of_sync (lag %s): the drill tests an old point", res, p.Site, r.Lag.Round(time.Second)))
			}
		}
	}

	var servers []string
	for _, s := range g.Servers() {
		servers = append(servers, s.Name)
	}
	if len(servers) > 0 {
		hs, err := a.Drivers.Compute.Health(ctx, p.Site, servers)
		if err != nil {
			return DrillPlan{}, wrap("drill precheck: servers at "+p.Site, err)
		}
		for _, h := range hs {
			if h.State != drivers.ServerAbsent {
				return DrillPlan{}, precheckErr("server %s already exists at site %s (%s): the drill boots its clone under that name and would touch it", h.Name, p.Site, h.State)
			}
		}
	}
	return p, nil
}

// refuseOtherRuns fails the precheck while another run of the group is
// active: a run recorded unfinished whose workflow still runs, or any
// workflow running under the group's lock id. A scheduled drill's own
// workflow id does not hold the lock, so this is what keeps it from
// running beside a failover.
func (a *Activities) refuseOtherRuns(ctx context.Context, in DrillPlanInput) error {
	tc := activity.GetClient(ctx)
	running := func(wfID, runID string) (string, bool, error) {
		d, err := tc.DescribeWorkflowExecution(ctx, wfID, runID)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("drill precheck: describe %s: %w", wfID, err)
		}
		info := d.GetWorkflowExecutionInfo()
		return info.GetExecution().GetRunId(), info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
	}
	runs, err := a.Store.ActiveRuns(ctx, in.Group)
	if err != nil {
		return fmt.Errorf("drill precheck: active runs: %w", err)
	}
	for _, r := range runs {
		if r.ID == in.Run.ID || r.WorkflowID == "" {
			continue
		}
		_, ok, err := running(r.WorkflowID, r.ID)
		if err != nil {
			return err
		}
		if ok {
			return precheckErr("group %s has another active run: %s run %s (workflow %s); a drill starts only when it has ended", in.Group, r.Kind, r.ID, r.WorkflowID)
		}
	}
	if in.LockWorkflowID != "" {
		runID, ok, err := running(in.LockWorkflowID, "")
		if err != nil {
			return err
		}
		if ok && runID != in.Run.ID {
			return precheckErr("group %s has another active run: workflow %s run %s; a drill starts only when it has ended", in.Group, in.LockWorkflowID, runID)
		}
	}
	return nil
}

// DrillBubbleInput creates a drill's bubble network.
type DrillBubbleInput struct {
	Key  string `json:"key"`
	Site string `json:"site"`
	Name string `json:"name"`
}

// DrillCreateBubble creates the isolated bubble network (no route to
// production) and returns its id.
func (a *Activities) DrillCreateBubble(ctx context.Context, in DrillBubbleInput) (string, error) {
	id, err := a.Drivers.Network.CreateBubble(ctx, in.Key, in.Site, in.Name)
	return id, wrap("create bubble at "+in.Site, err)
}

// DrillCloneInput clones the replicas of one batch.
type DrillCloneInput struct {
	Key   string     `json:"key"`
	Batch DrillBatch `json:"batch"`
	// Bubble is the drill's bubble: a storage that can start its clones
	// inside it (drivers.BubbleCloner) does.
	Bubble string `json:"bubble,omitempty"`
}

// DrillClone is one clone of a replica.
type DrillClone struct {
	Resource string `json:"resource"`
	ID       string `json:"id"`
}

// DrillCloneResult is a batch's clones and how far behind the primary the
// cloned point was (the drill's RPO).
type DrillCloneResult struct {
	Backend string        `json:"backend"`
	Clones  []DrillClone  `json:"clones"`
	MaxLag  time.Duration `json:"max_lag"`
}

// DrillCloneBatch clones the latest consistent point of every replica of a
// batch (Storage.TestFailoverStart, or TestFailoverStartIn the bubble when
// the storage is a drivers.BubbleCloner); replication keeps running into
// the replicas themselves.
func (a *Activities) DrillCloneBatch(ctx context.Context, in DrillCloneInput) (DrillCloneResult, error) {
	out := DrillCloneResult{Backend: in.Batch.Backend}
	// The lag before cloning bounds the clones' age: they hold at least
	// that point.
	if st, err := a.Drivers.Storage.ReplicationStatus(ctx, in.Batch.Resources); err == nil {
		for _, r := range st {
			if r.Backend == in.Batch.Backend && r.Lag > out.MaxLag {
				out.MaxLag = r.Lag
			}
		}
	}
	ids, err := a.startClones(ctx, in)
	if err != nil {
		return out, wrap("clone replicas on "+in.Batch.Backend, err)
	}
	if len(ids) != len(in.Batch.Resources) {
		// Keep what was made, so cleanup removes it, and say why the drill
		// cannot go on.
		for _, id := range ids {
			out.Clones = append(out.Clones, DrillClone{ID: id})
		}
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("clone replicas on %s: %d clones for %d replicas", in.Batch.Backend, len(ids), len(in.Batch.Resources)), ErrPermanent, nil, out)
	}
	for i, id := range ids {
		out.Clones = append(out.Clones, DrillClone{Resource: in.Batch.Resources[i], ID: id})
	}
	return out, nil
}

// startClones clones a batch inside the drill's bubble when the storage
// can, else where TestFailoverStart puts them.
func (a *Activities) startClones(ctx context.Context, in DrillCloneInput) ([]string, error) {
	if bc, ok := a.Drivers.Storage.(drivers.BubbleCloner); ok && in.Bubble != "" {
		return bc.TestFailoverStartIn(ctx, in.Key, in.Batch.Backend, in.Batch.Resources, in.Bubble)
	}
	return a.Drivers.Storage.TestFailoverStart(ctx, in.Key, in.Batch.Backend, in.Batch.Resources)
}

// drillHeartbeat is how often DrillBoot heartbeats while the compute
// endpoint works, so a cancelled drill learns within seconds that the boot
// has stopped before it tears the bubble down.
const drillHeartbeat = time.Second

// DrillBoot boots one tier's clones inside the bubble and returns when all
// of them are healthy. Unlike BootTier it heartbeats while the boot call
// itself runs: the drill waits for a cancelled boot to stop, so no server
// can appear in a bubble after it was destroyed.
func (a *Activities) DrillBoot(ctx context.Context, in BootInput) error {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(drillHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, "booting")
			}
		}
	}()
	activity.RecordHeartbeat(ctx, "booting")
	err := a.BootTier(ctx, in)
	close(done)
	return err
}

// DrillChecks runs every check from inside the bubble. The results ride in
// the error's details when a check fails, so the report shows every check
// whatever happened; the retry policy gives a service warming up a moment.
func (a *Activities) DrillChecks(ctx context.Context, in VerifyInput) ([]drivers.CheckResult, error) {
	out := []drivers.CheckResult{}
	var failed []string
	for _, c := range in.Checks {
		r, err := a.Drivers.Verify.Check(ctx, in.Site, in.Network, c)
		if err != nil {
			if drivers.Kind(err) != drivers.Permanent {
				return out, wrap("check "+c.Name, err)
			}
			r = drivers.CheckResult{Name: c.Name, Detail: err.Error()}
		}
		out = append(out, r)
		if !r.Passed {
			failed = append(failed, c.Name+": "+r.Detail)
		}
	}
	if len(failed) > 0 {
		return out, temporal.NewApplicationError("checks failed inside the bubble: "+strings.Join(failed, "; "), ErrChecks, out)
	}
	return out, nil
}

// DrillCleanupInput is everything a drill recorded it created. InDoubt
// lists creations whose outcome the drill never learned (an attempt timed
// out): cleanup repeats them with the same idempotency key, which answers
// what the first call made (or makes it), and removes that too.
type DrillCleanupInput struct {
	Key    string `json:"key"`
	Site   string `json:"site"`
	Bubble string `json:"bubble,omitempty"`
	// Clones maps a backend to the clone ids made on it.
	Clones        map[string][]string `json:"clones,omitempty"`
	BubbleInDoubt *DrillBubbleInput   `json:"bubble_in_doubt,omitempty"`
	ClonesInDoubt []DrillCloneInput   `json:"clones_in_doubt,omitempty"`
	// Servers booted in the bubble: removing the bubble removes them, and
	// cleanup checks they are gone.
	Servers []string `json:"servers,omitempty"`
}

// DrillCleanupResult is what cleanup removed, including what it learned of
// in-doubt creations.
type DrillCleanupResult struct {
	Bubbles []string            `json:"bubbles,omitempty"`
	Clones  map[string][]string `json:"clones,omitempty"`
}

// DrillCleanup removes the bubble (and with it the servers booted inside),
// then the clones, and checks that no drill server is left at the site.
// Every call is idempotent: a retried cleanup removes nothing twice and an
// already-gone resource is fine.
func (a *Activities) DrillCleanup(ctx context.Context, in DrillCleanupInput) (DrillCleanupResult, error) {
	out := DrillCleanupResult{Clones: map[string][]string{}}
	if in.Bubble != "" {
		out.Bubbles = append(out.Bubbles, in.Bubble)
	}
	for be, ids := range in.Clones {
		out.Clones[be] = append(out.Clones[be], ids...)
	}
	if b := in.BubbleInDoubt; b != nil {
		id, err := a.Drivers.Network.CreateBubble(ctx, b.Key, b.Site, b.Name)
		if err != nil {
			return out, wrap("cleanup: resolve the bubble in doubt", err)
		}
		if id != in.Bubble {
			out.Bubbles = append(out.Bubbles, id)
		}
	}
	for _, c := range in.ClonesInDoubt {
		ids, err := a.startClones(ctx, c)
		if err != nil {
			return out, wrap("cleanup: resolve the clones in doubt on "+c.Batch.Backend, err)
		}
		out.Clones[c.Batch.Backend] = appendNew(out.Clones[c.Batch.Backend], ids...)
	}

	// The bubble first: its servers use the clones.
	for _, id := range out.Bubbles {
		if err := a.Drivers.Network.DestroyBubble(ctx, in.Key+"/bubble/"+id, in.Site, id); err != nil {
			return out, wrap("cleanup: destroy bubble "+id, err)
		}
	}
	backends := make([]string, 0, len(out.Clones))
	for be := range out.Clones {
		backends = append(backends, be)
	}
	sort.Strings(backends)
	for _, be := range backends {
		ids := out.Clones[be]
		if len(ids) == 0 {
			continue
		}
		if err := a.Drivers.Storage.TestFailoverStop(ctx, in.Key+"/clones/"+be, be, ids); err != nil {
			return out, wrap("cleanup: delete clones on "+be, err)
		}
	}
	if len(in.Servers) > 0 {
		hs, err := a.Drivers.Compute.Health(ctx, in.Site, in.Servers)
		if err != nil {
			return out, wrap("cleanup: check the drill's servers are gone", err)
		}
		var left []string
		for _, h := range hs {
			if h.State != drivers.ServerAbsent {
				left = append(left, h.Name+" ("+h.State+")")
			}
		}
		if len(left) > 0 {
			return out, temporal.NewApplicationError(fmt.Sprintf("cleanup: servers still at site %s after the bubble was removed: %s", in.Site, strings.Join(left, ", ")), ErrPermanent)
		}
	}
	return out, nil
}

func appendNew(xs []string, ys ...string) []string {
	for _, y := range ys {
		found := false
		for _, x := range xs {
			if x == y {
				found = true
			}
		}
		if !found {
			xs = append(xs, y)
		}
	}
	return xs
}
