package openstack_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/openstack"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/testsuite/conformance"
)

// The driver conformance suite, run against the OpenStack adapter
// configured on the simulator's Cinder and Manila FACADES (not real
// OpenStack: drivers/sim/facade_storage.go). The facades give the adapter
// storage that holds data and can lose a site; the fixture writes and
// reads markers, takes sites down and stalls replication through the
// simulator's own control calls.
//
// The suite has no optional checks (only the consistency-group snapshot
// follows Capabilities), and the adapter refuses, as Permanent errors with
// the reason, what Cinder's and Manila's APIs have no call for. Those
// checks cannot pass against any OpenStack, facade or real. So each test
// runs the whole suite in a child process (the same test binary) and holds
// every check's outcome against facadeExpect: a check expected to pass
// must pass, one expected to fail must fail with the reason written next
// to it. A check that changes either way fails the test, so the table
// stays the truth: when the adapter learns to do what a check needs,
// write "pass" next to it.

// facadeChildEnv selects, in the child process, the fixture whose suite
// runs for real.
const facadeChildEnv = "FERRY_FACADE_CONFORMANCE"

// facadeExpect is each check's expected outcome per fixture: "pass", or a
// text the failure must contain (the suite's own message where it has
// one), with why in the comment. Every failure here is the adapter saying
// what Cinder's or Manila's API does not have, except where the comment
// says it is the adapter's to fix.
var facadeExpect = map[string]map[string]string{
	// Manila (manila.go): share replicas, promote, resync, replicated
	// snapshots and shares from snapshots.
	"shares": {
		// Manila shows replica_state only: no last consistent point.
		"replication_status": "claims to be consistent only at 0001-01-01",
		// Manila has no demote (its promote demotes the old active), so the
		// primary still takes writes after Demote.
		"planned_failover":   "after demote:",
		"failover_completed": "after demote:",
		// Manila cannot fence (access rules are the share's, not a
		// replica's).
		"unplanned_failover":     "fence must work on an unreachable backend",
		"reprotect_and_failback": "fence must work on an unreachable backend",
		"fence_and_demote":       "the adapter must fence",
		// Manila has no freeze of a backend.
		"freeze":           "the adapter must support freeze",
		"idempotency_keys": "storage.freeze: permanent",
		// Manila's promote demotes the active itself: a promote without a
		// demote goes through (the check stops there; see the report for
		// the down-site part it never reaches).
		"errors":             "a planned promote while the primary is active and not demoted is permanent",
		"promote_idempotent": "pass",
		"test_failover":      "pass",
	},
	// Cinder (cinder_groups.go): generic volume groups with replication
	// (3.38), group snapshots and create-from-src (3.14).
	"volumes": {
		// Cinder shows no lag and no last consistent point.
		"replication_status": "claims to be consistent only at 0001-01-01",
		// Cinder has no demote (failover_replication is the whole switch),
		// so the primary still takes writes after Demote.
		"planned_failover":   "after demote:",
		"failover_completed": "after demote:",
		// Cinder cannot fence: freezing cinder-volume stops management
		// calls, not writes.
		"unplanned_failover":     "fence must work on an unreachable backend",
		"reprotect_and_failback": "fence must work on an unreachable backend",
		"fence_and_demote":       "the adapter must fence",
		"idempotency_keys":       "storage.fence: permanent",
		// Cinder has no "sync now": Sync reports what Cinder shows, frozen
		// or not.
		"freeze": "a frozen backend refuses a sync",
		// Cinder has no demote: failover_replication is the whole switch.
		"errors":             "a planned promote while the primary is active and not demoted is permanent",
		"promote_idempotent": "pass",
		// Cinder copies a group snapshot onto the array the group is
		// active on: a drill at the target's site gets no copy there.
		"test_failover": "has no call that copies a replica at its replication target",
	},
}

func TestFacadeConformanceShares(t *testing.T) {
	runFacadeConformance(t, "shares", facadeSharesFixture)
}

func TestFacadeConformanceVolumes(t *testing.T) {
	runFacadeConformance(t, "volumes", facadeVolumesFixture)
}

// TestFacadeAdapterSiteDown runs the down-site part of the suite's errors
// check, which the suite never reaches on OpenStack (it stops at the
// promote without demote): with the DR site down, the adapter's calls
// aimed at it fail Unreachable, fast, and promote nothing.
func TestFacadeAdapterSiteDown(t *testing.T) {
	for name, factory := range map[string]conformance.Factory{"shares": facadeSharesFixture, "volumes": facadeVolumesFixture} {
		t.Run(name, func(t *testing.T) {
			fx := factory(t)
			ctx := context.Background()
			require.NoError(t, fx.Control.SetSiteDown(ctx, fx.DR.Site, true))
			timed := func(what string, call func(ctx context.Context) error) {
				t.Helper()
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				start := time.Now()
				err := call(ctx)
				require.Equal(t, drivers.Unreachable, drivers.Kind(err), "%s on a down site: %v", what, err)
				require.Less(t, time.Since(start), 10*time.Second, "%s on a down site: a hang", what)
			}
			timed("backend status", func(ctx context.Context) error {
				_, err := fx.Storage.BackendStatus(ctx, fx.DR.Backend)
				return err
			})
			timed("capabilities", func(ctx context.Context) error {
				_, err := fx.Storage.Capabilities(ctx, fx.DR.Backend)
				return err
			})
			timed("forced promote", func(ctx context.Context) error {
				_, err := fx.Storage.Promote(ctx, "site-down/promote", fx.DR.Backend, fx.Resources, true)
				return err
			})
			require.NoError(t, fx.Control.SetSiteDown(ctx, fx.DR.Site, false))
			st, err := fx.Storage.ReplicationStatus(ctx, fx.Resources)
			require.NoError(t, err)
			for _, s := range st {
				if s.Backend == fx.Primary.Backend {
					require.Equal(t, ferry.ReplicaActive, s.State, "%s: nothing was promoted", s.Resource)
				}
			}
		})
	}
}

func runFacadeConformance(t *testing.T, kind string, factory conformance.Factory) {
	if os.Getenv(facadeChildEnv) == kind {
		conformance.Run(t, factory)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1", "-test.timeout=9m")
	cmd.Env = append(os.Environ(), facadeChildEnv+"="+kind)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the conformance suite on the facade did not finish: %v\n%s", ctx.Err(), out)
	}
	results := parseChecks(t.Name(), out)
	require.NotEmpty(t, results, "the child ran no check (exit: %v):\n%s", err, out)
	expect := facadeExpect[kind]
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := results[n]
		want, known := expect[n]
		switch {
		case !known:
			t.Errorf("check %s: not in facadeExpect[%q]; it %s:\n%s", n, kind, r.verdict(), r.log)
		case want == "pass" && !r.passed:
			t.Errorf("check %s: expected to pass, failed:\n%s", n, r.log)
		case want != "pass" && r.passed:
			t.Errorf("check %s: expected to fail (%s), passed: update facadeExpect", n, want)
		case want != "pass" && !strings.Contains(r.log, want):
			t.Errorf("check %s: expected to fail with %q, failed otherwise:\n%s", n, want, r.log)
		default:
			t.Logf("facade conformance %s/%s: %s", kind, n, r.verdict())
		}
	}
	for n := range expect {
		if _, ok := results[n]; !ok {
			t.Errorf("check %s of facadeExpect[%q] did not run", n, kind)
		}
	}
}

type checkResult struct {
	passed bool
	log    string
}

func (r checkResult) verdict() string {
	if r.passed {
		return "PASS"
	}
	return "FAIL (as expected, see facadeExpect)"
}

// parseChecks reads `go test -v` output of one test: each check's log (the
// lines between its === RUN and the next) and its --- PASS/FAIL line.
func parseChecks(test string, out []byte) map[string]checkResult {
	res := map[string]checkResult{}
	logs := map[string]*strings.Builder{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		for _, mark := range []string{"=== RUN", "=== NAME", "=== CONT"} {
			if rest, ok := strings.CutPrefix(trim, mark); ok {
				name := strings.TrimSpace(rest)
				cur = ""
				if check, ok := strings.CutPrefix(name, test+"/"); ok && !strings.Contains(check, "/") {
					cur = check
					if logs[cur] == nil {
						logs[cur] = &strings.Builder{}
					}
				}
			}
		}
		for _, verdict := range []string{"--- PASS:", "--- FAIL:"} {
			if rest, ok := strings.CutPrefix(trim, verdict); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					if check, ok := strings.CutPrefix(f[0], test+"/"); ok && !strings.Contains(check, "/") {
						res[check] = checkResult{passed: verdict == "--- PASS:"}
					}
				}
			}
		}
		if cur != "" {
			logs[cur].WriteString(line + "\n")
		}
	}
	for n, r := range res {
		if b := logs[n]; b != nil {
			r.log = b.String()
		}
		res[n] = r
	}
	return res
}

// --- fixtures --------------------------------------------------------------

const (
	facadeSiteA, facadeSiteB = "conf-site-a", "conf-site-b"
)

// facadeShares: two manila backends, the group's two shares on the first.
func facadeSharesFixture(t *testing.T) *conformance.Fixture {
	resources := []string{"conf-media", "conf-home"}
	inv := ferry.Inventory{
		Sites: []ferry.Site{{Name: facadeSiteA}, {Name: facadeSiteB}},
		Backends: []ferry.Backend{
			{Name: "conf-fa", Site: facadeSiteA, Type: "manila", Members: []string{"conf-fa1"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "b", Backend: "conf-fb"}}},
			{Name: "conf-fb", Site: facadeSiteB, Type: "manila", Members: []string{"conf-fb1"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "a", Backend: "conf-fa"}}},
		},
		Groups: []ferry.Group{{Name: "conf", PrimarySite: facadeSiteA, DRSite: facadeSiteB, RPOSeconds: 60,
			Shares: []ferry.Share{{Name: resources[0], Backend: "conf-fa"}, {Name: resources[1], Backend: "conf-fa"}}}},
	}
	return facadeFixture(t, inv, resources, "share",
		conformance.Side{Backend: "conf-fa", Site: facadeSiteA, Members: []string{"conf-fa1@conf-fa"}},
		conformance.Side{Backend: "conf-fb", Site: facadeSiteB, Members: []string{"conf-fb1@conf-fb"}})
}

// facadeVolumes: a clustered cinder backend and its replication target,
// the group's two volumes on the first (one facade group).
func facadeVolumesFixture(t *testing.T) *conformance.Fixture {
	resources := []string{"conf-db", "conf-logs"}
	inv := ferry.Inventory{
		Sites: []ferry.Site{{Name: facadeSiteA}, {Name: facadeSiteB}},
		Backends: []ferry.Backend{
			{Name: "conf-a", Site: facadeSiteA, Type: "cinder", Members: []string{"conf-a1", "conf-a2"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "b", Backend: "conf-b"}}},
			{Name: "conf-b", Site: facadeSiteB, Type: "cinder", Members: []string{"conf-b1"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "a", Backend: "conf-a"}}},
		},
		Groups: []ferry.Group{{Name: "conf", PrimarySite: facadeSiteA, DRSite: facadeSiteB, RPOSeconds: 60,
			Volumes: []ferry.Volume{{Name: resources[0], Backend: "conf-a"}, {Name: resources[1], Backend: "conf-a"}}}},
	}
	return facadeFixture(t, inv, resources, "volume",
		conformance.Side{Backend: "conf-a", Site: facadeSiteA, Members: []string{"conf-a1@conf-a", "conf-a2@conf-a"}},
		conformance.Side{Backend: "conf-b", Site: facadeSiteB, Members: []string{"conf-b1@conf-b"}})
}

// facadeFixture serves a fresh simulator with inv over HTTP and configures
// the adapter on its facades with sim.FacadeOpenStackConfig. cloneKind is
// the facade id kind of the adapter's clone ids ("share" or "volume").
func facadeFixture(t *testing.T, inv ferry.Inventory, resources []string, cloneKind string, primary, dr conformance.Side) *conformance.Fixture {
	t.Helper()
	cloud := sim.NewCloud(sim.Options{})
	srv := httptest.NewServer(sim.NewHandler(cloud))
	t.Cleanup(srv.Close)
	c := sim.NewClient(srv.URL, nil)
	require.NoError(t, c.LoadInventory(context.Background(), inv))

	clouds, cfgYAML, err := sim.FacadeOpenStackConfig(srv.URL, inv)
	require.NoError(t, err)
	dir := t.TempDir()
	cloudsFile := filepath.Join(dir, "clouds.yaml")
	require.NoError(t, os.WriteFile(cloudsFile, clouds, 0o600))
	var cfg openstack.Config
	require.NoError(t, yaml.Unmarshal(cfgYAML, &cfg))
	cfg.CloudsFile, cfg.StateDir = cloudsFile, filepath.Join(dir, "state")
	cfg.Timeout, cfg.SettleTimeout = 5*time.Second, 20*time.Second
	a, err := openstack.New(cfg)
	require.NoError(t, err)

	w := &facadeWorkload{c: c, kind: cloneKind, logs: map[string]map[string][]string{}, active: map[string]string{}}
	for _, r := range resources {
		w.logs[r] = map[string][]string{}
		w.active[r] = primary.Site
	}
	return &conformance.Fixture{
		Storage: a, Primary: primary, DR: dr, TargetID: "b", Resources: resources,
		Workload: w, Control: facadeControl{c: c},
	}
}

type facadeControl struct{ c *sim.Client }

func (f facadeControl) SetSiteDown(ctx context.Context, site string, down bool) error {
	return f.c.SetSiteDown(ctx, site, down)
}

func (f facadeControl) SetStalled(ctx context.Context, stalled bool) error {
	return f.c.SetPartition(ctx, facadeSiteA, facadeSiteB, stalled)
}

// facadeWorkload writes markers through the simulator's control API, as
// an application at a site would, and mirrors each replica's log (the
// simulator's writes are positional: seq n is a log's n-th write) to give
// them unique ids: a following secondary holds a prefix of the active's
// log, a diverged one keeps its own, a newly promoted one starts from the
// prefix it held. Clones are named as the adapter names them: the facade
// id of the simulator's clone (FacadeID(kind, clone id)).
type facadeWorkload struct {
	c      *sim.Client
	kind   string
	mu     sync.Mutex
	n      int
	logs   map[string]map[string][]string // resource -> site -> ids
	active map[string]string              // resource -> site
}

func (w *facadeWorkload) refresh(ctx context.Context, res string) error {
	ri, err := w.c.ResourceInfo(ctx, res)
	if err != nil {
		return err
	}
	logs := w.logs[res]
	seq := map[string]int64{}
	for _, rep := range ri.Replicas {
		seq[rep.Site] = rep.Seq
	}
	if ri.ActiveSite != w.active[res] {
		p, err := logPrefix(logs[w.active[res]], seq[ri.ActiveSite])
		if err != nil {
			return err
		}
		logs[ri.ActiveSite] = p
		w.active[res] = ri.ActiveSite
	}
	for _, rep := range ri.Replicas {
		from := ri.ActiveSite
		if rep.Site == ri.ActiveSite || rep.Diverged {
			from = rep.Site
		}
		p, err := logPrefix(logs[from], rep.Seq)
		if err != nil {
			return err
		}
		logs[rep.Site] = p
	}
	return nil
}

func logPrefix(log []string, n int64) ([]string, error) {
	if int64(len(log)) < n {
		return nil, fmt.Errorf("the simulator holds %d writes, the workload made %d", n, len(log))
	}
	return append([]string(nil), log[:n]...), nil
}

func (w *facadeWorkload) Write(ctx context.Context, site, res string) (conformance.Marker, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.refresh(ctx, res); err != nil {
		return conformance.Marker{}, err
	}
	seq, err := w.c.WriteAt(ctx, res, site, 1)
	if err != nil {
		return conformance.Marker{}, err
	}
	w.n++
	id := fmt.Sprintf("%s#%d", res, w.n)
	log := w.logs[res][site]
	if int64(len(log))+1 != seq {
		return conformance.Marker{}, fmt.Errorf("write %d at %s: the mirror holds %d writes", seq, site, len(log))
	}
	w.logs[res][site] = append(log, id)
	return conformance.Marker{ID: id, At: time.Now()}, nil
}

func (w *facadeWorkload) Markers(ctx context.Context, site, res string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.refresh(ctx, res); err != nil {
		return nil, err
	}
	return append([]string(nil), w.logs[res][site]...), nil
}

func (w *facadeWorkload) CloneMarkers(ctx context.Context, id string) ([]string, error) {
	st, err := w.c.State(ctx)
	if err != nil {
		return nil, err
	}
	for _, cl := range st.Clones {
		if sim.FacadeID(w.kind, cl.ID) != id {
			continue
		}
		for _, b := range st.Backends {
			if b.Name == cl.Backend {
				w.mu.Lock()
				defer w.mu.Unlock()
				if err := w.refresh(ctx, cl.Resource); err != nil {
					return nil, err
				}
				return logPrefix(w.logs[cl.Resource][b.Site], cl.Seq)
			}
		}
	}
	return nil, fmt.Errorf("no clone %s in the simulator", id)
}

func (w *facadeWorkload) Clones(ctx context.Context) ([]string, error) {
	st, err := w.c.State(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, cl := range st.Clones {
		out = append(out, sim.FacadeID(w.kind, cl.ID))
	}
	return out, nil
}
