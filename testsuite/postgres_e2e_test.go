package testsuite

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/postgres"
	"github.com/ferrydr/ferry/drivers/rfc2136"
	"github.com/ferrydr/ferry/drivers/router"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// The PostgreSQL-backed group: its one volume is the replicated database
// cluster (pg-a at site-a streaming to pg-b at site-b), its server is
// simulated, its DNS record lives on a real BIND, and its check is a real
// SQL query.
const (
	ledgerGroup  = "ledger"
	ledgerRecord = "ledger.ferry.test"
	ledgerHome   = "10.1.0.50"
	ledgerDR     = "10.2.0.50"
)

func ledgerInventory() ferry.Inventory {
	return ferry.Inventory{
		Sites: []ferry.Site{{Name: "site-a"}, {Name: "site-b"}},
		Backends: []ferry.Backend{
			{Name: "pg-a", Site: "site-a", Type: "postgres", Members: []string{"pg-a"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "pg-b"}}},
			{Name: "pg-b", Site: "site-b", Type: "postgres", Members: []string{"pg-b"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-a", Backend: "pg-a"}}},
		},
		Groups: []ferry.Group{{
			Name: ledgerGroup, PrimarySite: "site-a", DRSite: "site-b", RPOSeconds: 60,
			Consistency: ferry.ConsistencyCrash, QuiescePolicy: ferry.QuiesceContinue,
			Volumes: []ferry.Volume{{Name: postgres.TestCluster, Backend: "pg-a"}},
			// The simulated server boots from nothing the simulator knows:
			// its database is the real cluster, moved by the postgres adapter.
			Tiers:           []ferry.Tier{{Name: "app", Servers: []ferry.Server{{Name: "ledger-app-1", Networks: []string{"prod-ledger"}}}}},
			NetworkMappings: []ferry.NetworkMapping{{Production: "prod-ledger", DR: "dr-ledger", Test: "bubble-ledger"}},
			DNSRecords:      []ferry.DNSRecord{{Name: ledgerRecord, Type: "A", TTL: 60, Primary: ledgerHome, DR: ledgerDR}},
			Checks: []ferry.Check{{Name: "ledger-rows", Type: ferry.CheckSQL,
				Target: postgres.TestCluster + ": SELECT count(*) > 0 FROM " + postgres.MarkerTable, Expect: "t"}},
		}},
	}
}

// pgEnv is one PostgreSQL pair, one BIND, one simulator (for the server and
// its networks), one store and one in-process worker whose drivers route
// the group's storage and sql checks to the real database.
type pgEnv struct {
	t     *testing.T
	ctx   context.Context
	tc    client.Client
	tq    string
	pair  *postgres.TestPair
	named *rfc2136.Named
	cloud *sim.Cloud
	st    *store.Store
	// verify is the sql checks of the worker, for a test to run them too.
	verify *postgres.Verify
}

func newPGEnv(t *testing.T, tc client.Client) *pgEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &pgEnv{t: t, ctx: ctx, tc: tc, tq: "pg-e2e-" + strings.ReplaceAll(t.Name(), "/", "-")}
	e.pair = postgres.NewTestPair(t)
	e.named = rfc2136.StartTestServer(t, drivers.Record{Name: "ledger", Type: "A", TTL: 60, Value: ledgerHome})
	e.st = storetest.New(t)
	inv := ledgerInventory()
	require.NoError(t, e.st.ApplyInventory(ctx, inv))

	// The simulator knows the group's server, networks and record, not its
	// storage: that is the real cluster's.
	simInv := ferry.Inventory{Sites: inv.Sites, Groups: append([]ferry.Group(nil), inv.Groups...)}
	simInv.Groups[0].Volumes = nil
	e.cloud = sim.NewCloud(sim.Options{BootTime: 20 * time.Millisecond})
	require.NoError(t, e.cloud.LoadInventory(simInv))
	simc := sim.NewInProcess(e.cloud)

	bind, err := rfc2136.New(e.named.Config())
	require.NoError(t, err)
	storage := router.NewStorage(router.Of("sim", simc.Set()))
	require.NoError(t, storage.Add(router.Adapter{Name: "postgres", Storage: e.pair.Adapter},
		[]string{"pg-a", "pg-b"}, router.ResourcesOn(inv, "pg-a", "pg-b")))
	e.verify = e.pair.Adapter.Verify()
	verify := router.NewVerify(simc)
	verify.Route(ferry.CheckSQL, e.verify.Owns, e.verify)
	set := storage.Set(simc.Set())
	set.DNS = router.NewTee(router.Zone{Name: "bind", DNS: bind}, router.Zone{Name: "sim", DNS: simc})
	set.Verify = verify

	w := worker.New(tc, e.tq, &activities.Activities{Drivers: set, Store: e.st}, worker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return e
}

func (e *pgEnv) start(name string, in any) client.WorkflowRun {
	e.t.Helper()
	run, err := e.tc.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{
		ID: workflows.GroupWorkflowID(ledgerGroup), TaskQueue: e.tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, name, in)
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = e.tc.TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test ended")
	})
	return run
}

func (e *pgEnv) result(run client.WorkflowRun) ferry.Run {
	e.t.Helper()
	var r ferry.Run
	require.NoError(e.t, run.Get(e.ctx, &r))
	return r
}

func (e *pgEnv) failover(mode string) ferry.Run {
	e.t.Helper()
	r := e.result(e.start(workflows.FailoverWorkflowName, workflows.FailoverInput{
		Group: ledgerGroup, Mode: mode, RequestedBy: "e2e", MaxAttempts: 3,
	}))
	require.Equal(e.t, ferry.RunCompleted, r.State, "%s failover: %s %+v", mode, r.Message, r.Steps)
	return r
}

// write inserts n marker rows, each its own transaction, at site.
func (e *pgEnv) write(site string, n int) []postgres.WrittenRow {
	e.t.Helper()
	var out []postgres.WrittenRow
	for i := 0; i < n; i++ {
		w, err := e.pair.WriteRow(e.ctx, site)
		require.NoError(e.t, err)
		out = append(out, w)
	}
	return out
}

func (e *pgEnv) rows(site string) []string {
	e.t.Helper()
	ids, err := e.pair.Rows(e.ctx, site)
	require.NoError(e.t, err)
	sort.Strings(ids)
	return ids
}

// waitReplicated waits until the node at site holds every row.
func (e *pgEnv) waitReplicated(site string, rows []postgres.WrittenRow) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		have, err := e.pair.Rows(e.ctx, site)
		return err == nil && containsAll(have, ids(rows))
	}, 30*time.Second, 50*time.Millisecond, "rows never reached %s", site)
}

// dnsA asks the real BIND for the record with a plain DNS query.
func (e *pgEnv) dnsA() string {
	e.t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(ledgerRecord), dns.TypeA)
	resp, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, e.named.Addr)
	require.NoError(e.t, err)
	require.Equal(e.t, dns.RcodeSuccess, resp.Rcode)
	require.Len(e.t, resp.Answer, 1, "%v", resp.Answer)
	a, ok := resp.Answer[0].(*dns.A)
	require.True(e.t, ok, "%v", resp.Answer[0])
	require.Equal(e.t, uint32(60), a.Hdr.Ttl)
	return a.A.String()
}

func (e *pgEnv) simRecord() string {
	e.t.Helper()
	r, err := e.cloud.Get(e.ctx, ledgerRecord, "A")
	require.NoError(e.t, err)
	return r.Value
}

func ids(rows []postgres.WrittenRow) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

func containsAll(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

func checkOutcome(t *testing.T, r ferry.Run) ferry.CheckOutcome {
	t.Helper()
	require.Len(t, r.Checks, 1, "%+v", r.Checks)
	return r.Checks[0]
}

// requireVerified checks that a failover's verify step ran the group's sql
// check and passed (a failing check would have paused the run), and that
// the same check from the other site fails: it reads the writable primary
// where it runs, and nothing else.
func (e *pgEnv) requireVerified(r ferry.Run, at, other string) {
	e.t.Helper()
	var note string
	for _, s := range r.Steps {
		if s.Name == workflows.StepVerify {
			require.Equal(e.t, ferry.StepCompleted, s.State)
			note = s.Note
		}
	}
	require.Equal(e.t, "1 checks passed", note)
	spec := ledgerInventory().Groups[0].Checks[0]
	c := drivers.CheckSpec{Name: spec.Name, Type: spec.Type, Target: spec.Target, Expect: spec.Expect}
	res, err := e.verify.Check(e.ctx, at, "", c)
	require.NoError(e.t, err)
	require.True(e.t, res.Passed, res.Detail)
	require.Contains(e.t, res.Detail, `answered "t"`)
	res, err = e.verify.Check(e.ctx, other, "", c)
	if err == nil {
		require.False(e.t, res.Passed, "the check passed at %s, where no primary runs: %s", other, res.Detail)
	}
}

// TestPostgresGroupEndToEnd drives a PostgreSQL-backed group through
// Temporal with the real workflows: planned failover then failback, an
// unplanned failover with the primary site gone, and a drill. Every data
// check is a real SQL read.
func TestPostgresGroupEndToEnd(t *testing.T) {
	tc := devserver.Start(t).Client()

	t.Run("planned failover and failback", func(t *testing.T) {
		e := newPGEnv(t, tc)
		require.Equal(t, ledgerHome, e.dnsA())
		before := e.write("site-a", 5)

		r := e.failover(ferry.ModePlanned)
		require.Equal(t, "site-b", r.Site)
		require.NotNil(t, r.WritesLost)
		require.Zero(t, *r.WritesLost, "a planned failover loses nothing")
		e.requireVerified(r, "site-b", "site-a")

		// Every write made before the failover is on the new primary,
		// which takes writes; the old one is a read-only standby.
		require.Subset(t, e.rows("site-b"), ids(before))
		after := e.write("site-b", 3)
		_, err := e.pair.WriteRow(e.ctx, "site-a")
		require.ErrorContains(t, err, "recovery is in progress", "a standby takes no writes")
		require.Equal(t, ledgerDR, e.dnsA(), "the real DNS server was repointed")
		require.Equal(t, ledgerDR, e.simRecord(), "and the simulator's zone with it")
		g, err := e.st.GetGroup(e.ctx, ledgerGroup)
		require.NoError(t, err)
		require.Equal(t, "site-b", g.ActiveSite)

		fb := e.result(e.start(workflows.FailbackWorkflowName, workflows.LifecycleInput{
			Group: ledgerGroup, RequestedBy: "e2e", MaxAttempts: 3,
		}))
		require.Equal(t, ferry.RunCompleted, fb.State, "failback: %s %+v", fb.Message, fb.Steps)

		// Every row came home, written at either site, and home takes
		// writes again; the DR node follows it.
		require.Subset(t, e.rows("site-a"), append(ids(before), ids(after)...))
		home := e.write("site-a", 1)
		e.waitReplicated("site-b", home)
		_, err = e.pair.WriteRow(e.ctx, "site-b")
		require.ErrorContains(t, err, "recovery is in progress", "a standby takes no writes")
		require.Equal(t, ledgerHome, e.dnsA())
		require.Equal(t, ledgerHome, e.simRecord())
		g, err = e.st.GetGroup(e.ctx, ledgerGroup)
		require.NoError(t, err)
		require.Contains(t, []string{"", "site-a"}, g.ActiveSite)
	})

	t.Run("unplanned failover loses exactly the unreplicated rows", func(t *testing.T) {
		e := newPGEnv(t, tc)
		kept := e.write("site-a", 3)
		e.waitReplicated("site-b", kept)
		// The standby has replayed past every kept row's commit.
		standby := func() int64 {
			st, err := e.pair.Adapter.ReplicationStatus(e.ctx, []string{postgres.TestCluster})
			require.NoError(t, err)
			for _, r := range st {
				if r.Backend == "pg-b" {
					return r.Seq
				}
			}
			t.Fatal("no replica on pg-b")
			return 0
		}
		require.Eventually(t, func() bool { return standby() >= kept[len(kept)-1].After }, 30*time.Second, 50*time.Millisecond)

		// The link between the sites breaks; the primary goes on taking
		// writes the standby never sees, then the site loses power.
		require.NoError(t, e.pair.SetStalled(e.ctx, true))
		lost := e.write("site-a", 4)
		replayed := standby()
		require.NoError(t, e.pair.SetSiteDown(e.ctx, "site-a", true))
		require.NoError(t, e.cloud.SetSiteDown("site-a", true))

		r := e.failover(ferry.ModeUnplanned)
		require.Equal(t, "site-b", r.Site)
		e.requireVerified(r, "site-b", "site-a")

		// The rows missing on the promoted node are exactly those after the
		// standby's last replayed point.
		var want, missing []postgres.WrittenRow
		for _, w := range append(append([]postgres.WrittenRow(nil), kept...), lost...) {
			switch {
			case w.After <= replayed:
				want = append(want, w)
			case w.Before >= replayed:
				missing = append(missing, w)
			default:
				t.Fatalf("row %s straddles the replayed point %d: %+v", w.ID, replayed, w)
			}
		}
		require.Equal(t, ids(kept), ids(want))
		require.Equal(t, ids(lost), ids(missing))
		require.Equal(t, ids(want), e.rows("site-b"))

		// The run's record says what the adapter knows: no count of lost
		// writes, and a data-loss window covering every lost row.
		require.NotNil(t, r.WritesLost)
		require.Equal(t, int64(-1), *r.WritesLost)
		require.NotNil(t, r.RPOSeconds)
		window := lost[len(lost)-1].At.Sub(kept[len(kept)-1].At).Seconds()
		require.GreaterOrEqual(t, *r.RPOSeconds, window, "the data-loss window must cover the lost rows")
		stored, err := e.st.GetRun(e.ctx, r.ID)
		require.NoError(t, err)
		require.NotNil(t, stored.RPOSeconds)
		require.InDelta(t, *r.RPOSeconds, *stored.RPOSeconds, 1e-6)
		require.Equal(t, ledgerDR, e.dnsA())

		// The promoted node takes writes.
		e.write("site-b", 1)
	})

	t.Run("drill reads a clone while replication runs", func(t *testing.T) {
		e := newPGEnv(t, tc)
		before := e.write("site-a", 3)
		e.waitReplicated("site-b", before)

		run := e.start(workflows.DrillWorkflowName, workflows.DrillInput{
			Group: ledgerGroup, RequestedBy: "e2e", HoldSeconds: 300, MaxAttempts: 3,
		})
		var live ferry.Run
		require.Eventually(t, func() bool {
			v, err := e.tc.QueryWorkflow(e.ctx, run.GetID(), run.GetRunID(), workflows.QueryProgress)
			if err != nil || v.Get(&live) != nil {
				return false
			}
			return live.State == ferry.RunPaused || ferry.RunEnded(live.State)
		}, time.Minute, 100*time.Millisecond, "the drill never held its bubble")
		require.Equal(t, ferry.RunPaused, live.State, "the drill ended early: %s %+v", live.Message, live.Steps)
		c := checkOutcome(t, live)
		require.True(t, c.Passed, c.Detail)
		require.Contains(t, c.Detail, "drill clone", "the check inside the bubble read the clone")

		// The clone holds the cloned point and is readable with SQL.
		clones, err := e.pair.CloneDirs()
		require.NoError(t, err)
		require.Len(t, clones, 1)
		cloneRows, err := e.pair.CloneRows(e.ctx, clones[0])
		require.NoError(t, err)
		require.Subset(t, cloneRows, ids(before))

		// Replication keeps running: a write to the primary during the
		// drill reaches the standby, and not the clone; a write to the
		// clone reaches nobody.
		during := e.write("site-a", 1)
		e.waitReplicated("site-b", during)
		cloneRows, err = e.pair.CloneRows(e.ctx, clones[0])
		require.NoError(t, err)
		require.NotContains(t, cloneRows, during[0].ID)
		inClone, err := e.pair.WriteCloneRow(e.ctx, clones[0])
		require.NoError(t, err)
		require.NotContains(t, e.rows("site-a"), inClone.ID)
		require.NotContains(t, e.rows("site-b"), inClone.ID)

		h, err := e.tc.UpdateWorkflow(e.ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateResume,
			Args: []any{workflows.SteerRequest{By: "e2e"}}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		require.NoError(t, err)
		require.NoError(t, h.Get(e.ctx, nil))
		r := e.result(run)
		require.Equal(t, ferry.RunCompleted, r.State, "drill: %s %+v", r.Message, r.Steps)

		// The cleanup removed the clone; production never moved.
		clones, err = e.pair.CloneDirs()
		require.NoError(t, err)
		require.Empty(t, clones)
		require.Equal(t, ledgerHome, e.dnsA())
		after := e.write("site-a", 1)
		e.waitReplicated("site-b", after)
		_, err = e.pair.WriteRow(e.ctx, "site-b")
		require.ErrorContains(t, err, "recovery is in progress", "a standby takes no writes")
	})
}
