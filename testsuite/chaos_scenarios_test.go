package testsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/workflows"
)

// The demo's sites, backends and groups, as the scenarios use them.
const (
	siteA = "site-a"
	siteB = "site-b"
)

var chaosBackends = []string{"a-block", "a-files", "b-block", "b-files"}

func demoResources(groups ...string) []string {
	var out []string
	for _, g := range demo.Inventory().Groups {
		for _, want := range groups {
			if g.Name == want {
				out = append(out, resourcesOf(g)...)
			}
		}
	}
	return out
}

// labGroup is a copy of the demo's shop that runs at site-b and keeps its
// replicas at site-a, for drills only. A drill boots its clones under the
// group's server names at the replica site, and refuses when a server of
// that name is already there (shop's, stopped, after any failover and
// back); lab never fails over, so its drills run whatever the other
// scenarios did to shop and crm before.
func labGroup() ferry.Group {
	var shop ferry.Group
	for _, g := range demo.Inventory().Groups {
		if g.Name == "shop" {
			shop = g
		}
	}
	raw, err := json.Marshal(shop)
	if err != nil {
		panic(err)
	}
	js := strings.NewReplacer("shop", "lab", "a-block", "b-block", "a-files", "b-files",
		"10.1.0.10", "10.2.0.30", "10.2.0.10", "10.1.0.30").Replace(string(raw))
	var lab ferry.Group
	if err := json.Unmarshal([]byte(js), &lab); err != nil {
		panic(err)
	}
	lab.Project, lab.Priority = "lab", 30
	lab.PrimarySite, lab.DRSite = siteB, siteA
	return lab
}

// addLab puts the lab group into the simulator and into Ferry's inventory.
func (cs *chaosSystem) addLab(t *testing.T, ctx context.Context) {
	t.Helper()
	lab := labGroup()
	inv := demo.Inventory()
	inv.Groups = []ferry.Group{lab}
	require.NoError(t, cs.sim.LoadInventory(ctx, inv))
	_, _, err := cs.api.PutGroup(ctx, lab)
	require.NoError(t, err)
}

// killScenario is a run kind the worker is killed inside: how to bring a
// system to the run's start, the run, and how it must end.
type killScenario struct {
	name string // its row in the table
	req  apiclient.StartRunRequest
	// children are child workflow ids whose activities are kill points
	// too (a failback's failover, an evacuation's group failovers).
	children []string
	// prepare brings a system from home (every group at its primary site,
	// in sync, nothing fenced) to the run's start.
	prepare func(t *testing.T, ctx context.Context, cs *chaosSystem)
	expect  expectation
	// inside are the long steps a kill lands inside of.
	inside []insidePoint
	// short picks the kill points of the short form.
	short []pick
}

// insidePoint is a kill inside a long activity: delay after it is
// scheduled, while it waits (a boot for health, a promote slowed by a
// latency fault).
type insidePoint struct {
	child      string
	activity   string
	occurrence int // 1 for the first activity of that type
	delay      time.Duration
	fault      *sim.Fault
	// armed: the fault is injected when the activity before this one is
	// scheduled rather than before the run, so that it slows the call
	// after the side effect (a read-back) and the kill lands between the
	// side effect and its report.
	armed bool
}

// pick names a kill point of a scenario, for the short form.
type pick struct {
	child      string
	activity   string
	occurrence int
	inside     bool
}

// killPoint is one run with one kill -9 of the worker: right after the nth
// ActivityTaskScheduled event of the run (or of its child), or inside that
// activity.
type killPoint struct {
	sc       *killScenario
	child    string
	n        int
	activity string
	inside   *insidePoint
}

func (kp killPoint) String() string {
	s := kp.sc.name + ": "
	if kp.child != "" {
		s += "child " + kp.child + " "
	}
	s += fmt.Sprintf("#%d %s", kp.n, kp.activity)
	if kp.inside != nil {
		s += fmt.Sprintf(" (inside, +%s)", kp.inside.delay)
		if kp.inside.armed {
			s += " after its side effect"
		}
	}
	return s
}

// killPoints lists every kill point of a scenario from its reference run:
// one after each scheduled activity of the run and its children, and one
// inside each long step.
func (sc *killScenario) killPoints(ref *reference) ([]killPoint, error) {
	var out []killPoint
	for _, wf := range append([]string{""}, sc.children...) {
		for i, a := range ref.activities[wf] {
			out = append(out, killPoint{sc: sc, child: wf, n: i + 1, activity: a.Type})
		}
	}
	for i := range sc.inside {
		ip := &sc.inside[i]
		seen := 0
		found := false
		for j, a := range ref.activities[ip.child] {
			if a.Type == ip.activity {
				seen++
				if seen == ip.occurrence {
					out = append(out, killPoint{sc: sc, child: ip.child, n: j + 1, activity: a.Type, inside: ip})
					found = true
					break
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: the reference run has no %s #%d in %q", sc.name, ip.activity, ip.occurrence, ip.child)
		}
		if ip.armed && out[len(out)-1].n < 2 {
			return nil, fmt.Errorf("%s: %s #%d is the first activity: nothing to arm its fault at", sc.name, ip.activity, ip.occurrence)
		}
	}
	return out, nil
}

// shortPoints are the kill points the short form tries.
func (sc *killScenario) shortPoints(all []killPoint) ([]killPoint, error) {
	var out []killPoint
	for _, p := range sc.short {
		seen := 0
		found := false
		for _, kp := range all {
			if kp.child != p.child || kp.activity != p.activity || (kp.inside != nil) != p.inside {
				continue
			}
			seen++
			if seen == p.occurrence {
				out = append(out, kp)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: no kill point %+v", sc.name, p)
		}
	}
	return out, nil
}

func labResources() []string { return resourcesOf(labGroup()) }

func labSites() map[string]string {
	m := map[string]string{}
	for _, r := range labResources() {
		m[r] = siteB
	}
	return m
}

// sitesOf says every resource of groups must be active at site.
func sitesOf(site string, groups ...string) map[string]string {
	m := map[string]string{}
	for _, r := range demoResources(groups...) {
		m[r] = site
	}
	return m
}

// slowPromote slows the promotes at a site so that a kill lands while
// they run.
func slowPromote(target string, times int) *sim.Fault {
	return &sim.Fault{Op: "storage.promote", Target: target, Times: times, Latency: 3 * time.Second}
}

// slowReadBack slows the next status read of a backend: failover_completed
// reads every member back after telling them.
func slowReadBack(backend string) *sim.Fault {
	return &sim.Fault{Op: "storage.backend_status", Target: backend, Times: 1, Latency: 3 * time.Second}
}

// killScenarios are the runs the worker dies inside: planned and unplanned
// failover, failback, drill and evacuation.
func killScenarios() []*killScenario {
	shop := []string{"shop"}
	boots := func(child string, delay time.Duration, activity string) []insidePoint {
		var out []insidePoint
		for i := 1; i <= 3; i++ {
			out = append(out, insidePoint{child: child, activity: activity, occurrence: i, delay: delay})
		}
		return out
	}
	return []*killScenario{
		{
			name:    "kill -9 worker: failover (planned)",
			req:     apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: "shop", Mode: ferry.ModePlanned},
			prepare: func(*testing.T, context.Context, *chaosSystem) {},
			expect: expectation{state: ferry.RunCompleted, resources: demoResources(shop...),
				sites: sitesOf(siteB, shop...), groups: map[string]string{"shop": siteB}},
			inside: append([]insidePoint{
				{activity: "Promote", occurrence: 1, delay: time.Second, fault: slowPromote(siteB, 2)},
				{activity: "FailoverCompleted", occurrence: 1, delay: time.Second, fault: slowReadBack("b-block"), armed: true},
			}, boots("", 400*time.Millisecond, "BootTier")...),
			short: []pick{{activity: "BootTier", occurrence: 1, inside: true}},
		},
		{
			name: "kill -9 worker: failover (unplanned)",
			req:  apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: "shop", Mode: ferry.ModeUnplanned},
			prepare: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
				cs.losePrimary(t, ctx, "shop")
			},
			expect: expectation{state: ferry.RunCompleted, resources: demoResources(shop...),
				sites: sitesOf(siteB, shop...), groups: map[string]string{"shop": siteB}, mayLose: true},
			inside: append([]insidePoint{{activity: "Promote", occurrence: 1, delay: time.Second, fault: slowPromote(siteB, 2)}},
				boots("", 400*time.Millisecond, "BootTier")...),
			short: []pick{{activity: "Promote", occurrence: 1, inside: true}},
		},
		{
			name:     "kill -9 worker: failback",
			req:      apiclient.StartRunRequest{Kind: ferry.KindFailback, Group: "shop"},
			children: []string{workflows.FailbackFailoverID("shop")},
			prepare: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
				cs.runUncut(t, ctx, apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: "shop", Mode: ferry.ModePlanned})
			},
			expect: expectation{state: ferry.RunCompleted, resources: demoResources(shop...),
				sites: sitesOf(siteA, shop...), groups: map[string]string{"shop": siteA}},
			inside: append([]insidePoint{
				{activity: "Resync", occurrence: 1, delay: time.Second,
					fault: &sim.Fault{Op: "storage.resync", Target: siteA, Times: 2, Latency: 3 * time.Second}},
				{activity: "Resync", occurrence: 2, delay: time.Second,
					fault: &sim.Fault{Op: "storage.resync", Target: siteB, Times: 2, Latency: 3 * time.Second}},
				{child: workflows.FailbackFailoverID("shop"), activity: "Promote", occurrence: 1, delay: time.Second, fault: slowPromote(siteA, 2)},
			}, boots(workflows.FailbackFailoverID("shop"), 400*time.Millisecond, "BootTier")...),
			short: []pick{{child: workflows.FailbackFailoverID("shop"), activity: "BootTier", occurrence: 2, inside: true}},
		},
		{
			name:    "kill -9 worker: drill",
			req:     apiclient.StartRunRequest{Kind: ferry.KindDrill, Group: "lab"},
			prepare: func(*testing.T, context.Context, *chaosSystem) {},
			expect: expectation{state: ferry.RunCompleted, resources: labResources(),
				sites: labSites(), drillSite: siteA},
			inside: append(boots("", 400*time.Millisecond, "DrillBoot"),
				// Bubble and clones removed, the check that no server is
				// left slowed: the kill lands before cleanup reports.
				insidePoint{activity: "DrillCleanup", occurrence: 1, delay: time.Second, armed: true,
					fault: &sim.Fault{Op: "compute.health", Target: siteA, Times: 1, Latency: 3 * time.Second}}),
			short: []pick{{activity: "DrillBoot", occurrence: 2, inside: true}},
		},
		{
			name: "kill -9 worker: evacuate",
			req: apiclient.StartRunRequest{Kind: ferry.KindEvacuate, Site: siteA, Mode: ferry.ModePlanned,
				Options: apiclient.RunOptions{SkipApproval: true}},
			children: []string{workflows.GroupWorkflowID("crm"), workflows.GroupWorkflowID("shop")},
			prepare:  func(*testing.T, context.Context, *chaosSystem) {},
			expect: expectation{state: ferry.RunCompleted, resources: demoResources("crm", "shop"),
				sites: sitesOf(siteB, "crm", "shop"), groups: map[string]string{"crm": siteB, "shop": siteB}},
			inside: []insidePoint{
				{child: workflows.GroupWorkflowID("crm"), activity: "Promote", occurrence: 1, delay: time.Second,
					fault: &sim.Fault{Op: "storage.promote", Target: "crm-db-data", Times: 1, Latency: 3 * time.Second}},
				{child: workflows.GroupWorkflowID("crm"), activity: "FailoverCompleted", occurrence: 1, delay: time.Second,
					fault: slowReadBack("b-block"), armed: true},
				{child: workflows.GroupWorkflowID("crm"), activity: "BootTier", occurrence: 1, delay: 400 * time.Millisecond},
			},
			short: []pick{{child: workflows.GroupWorkflowID("crm"), activity: "BootTier", occurrence: 1, inside: true}},
		},
	}
}

// losePrimary is how an unplanned failover starts: replication of the
// group's backends stalls, the primary takes writes the DR site never gets
// (the writes the failover must report lost), then site-a goes down.
func (cs *chaosSystem) losePrimary(t *testing.T, ctx context.Context, group string) {
	t.Helper()
	for _, be := range []string{"a-block", "a-files"} {
		require.NoError(t, cs.sim.SetLag(ctx, be, time.Hour))
	}
	for _, r := range demoResources(group) {
		_, err := cs.sim.Write(ctx, r, 3)
		require.NoError(t, err)
	}
	require.NoError(t, cs.sim.SetSiteDown(ctx, siteA, true))
}

// runUncut runs one run to completion, no kill: setting up or resetting.
func (cs *chaosSystem) runUncut(t *testing.T, ctx context.Context, req apiclient.StartRunRequest) ferry.Run {
	t.Helper()
	r := cs.start(t, ctx, req)
	end := cs.waitEnd(t, ctx, r.ID)
	require.Equal(t, ferry.RunCompleted, end.State, "%s of %s%s: %s", req.Kind, req.Group, req.Site, end.Message)
	return end
}

// home brings a system back to where every scenario starts: no run in
// progress, no fault, both sites up, no lag, every group active at its
// primary site with nothing fenced. A group left at the DR site fails over
// back (planned), or is failed back when an unplanned failover fenced its
// home backends, as an operator would.
func (cs *chaosSystem) home(t *testing.T, ctx context.Context) {
	t.Helper()
	cs.bind(t)
	// A job that failed half way may have left a process down.
	if !cs.workers[0].running() {
		require.NoError(t, cs.workers[0].start())
	}
	if !cs.temporal.p.running() {
		require.NoError(t, cs.temporal.p.start())
		require.NoError(t, cs.temporal.waitReady())
	}
	if !cs.pg.running() {
		require.NoError(t, cs.pg.start())
	}
	require.NoError(t, cs.sim.ClearFaults(ctx))
	for _, s := range []string{siteA, siteB} {
		require.NoError(t, cs.sim.SetSiteDown(ctx, s, false))
	}
	require.NoError(t, cs.sim.SetPartition(ctx, siteA, siteB, false))
	for _, be := range chaosBackends {
		require.NoError(t, cs.sim.SetLag(ctx, be, 0))
	}
	cs.abortLeftovers(t, ctx)
	for _, g := range []string{"crm", "shop"} {
		info, err := cs.sim.ResourceInfo(ctx, demoResources(g)[0])
		require.NoError(t, err)
		if info.ActiveSite == siteA {
			continue
		}
		st, err := cs.sim.State(ctx)
		require.NoError(t, err)
		fenced := false
		for _, b := range st.Backends {
			fenced = fenced || (b.Site == siteA && b.Fenced)
		}
		req := apiclient.StartRunRequest{Kind: ferry.KindFailover, Group: g, Mode: ferry.ModePlanned, Target: siteA,
			Options: apiclient.RunOptions{SkipApproval: true}}
		if fenced {
			req = apiclient.StartRunRequest{Kind: ferry.KindFailback, Group: g, Options: apiclient.RunOptions{SkipApproval: true}}
		}
		cs.runUncut(t, ctx, req)
	}
	st, err := cs.sim.State(ctx)
	require.NoError(t, err)
	for _, b := range st.Backends {
		require.False(t, b.Fenced, "backend %s still fenced at home", b.Name)
	}
	for _, r := range demoResources("crm", "shop") {
		info, err := cs.sim.ResourceInfo(ctx, r)
		require.NoError(t, err)
		require.Equal(t, siteA, info.ActiveSite, "%s not home", r)
	}
}

// abortLeftovers aborts any run a failed job left behind (paused, say), so
// the next job starts on a free system.
func (cs *chaosSystem) abortLeftovers(t *testing.T, ctx context.Context) {
	t.Helper()
	var page apiclient.Page[ferry.Run]
	retryFor(t, time.Minute, func() (err error) {
		page, err = cs.api.ListRuns(ctx, apiclient.RunFilter{ListOptions: apiclient.ListOptions{Limit: 1000}})
		return err
	}, "list runs")
	for _, r := range page.Items {
		if ferry.RunEnded(r.State) {
			continue
		}
		t.Logf("aborting run %s (%s of %s%s, %s) left by an earlier job", r.ID, r.Kind, r.Group, r.Site, r.State)
		if _, err := cs.api.Steer(ctx, r.ID, workflows.UpdateAbort, apiclient.SteerRequest{By: "chaos-reset"}); err != nil && !strings.Contains(err.Error(), "ended") {
			t.Logf("abort %s: %v", r.ID, err)
		}
		cs.waitEnd(t, ctx, r.ID)
	}
}
