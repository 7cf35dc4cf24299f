package testsuite

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers/sim"
)

// runOutcome is what one run contributes to the chaos table.
type runOutcome struct {
	KillPoints int
	Completed  bool
	Duplicates int
	Leaked     int
	LostBeyond int64
	// Replayed counts the calls answered from the idempotency ledger:
	// evidence that a kill made an activity ask again.
	Replayed int
}

// baseline is the simulator's truth just before a run starts: the checks
// afterwards count what changed.
type baseline struct {
	ledger    int
	lost      map[string]int64
	discarded map[string]int64
	servers   map[string]bool // "site/name"
}

// baseline reads the truth about the given resources.
func (cs *chaosSystem) baseline(t *testing.T, ctx context.Context, resources []string) baseline {
	t.Helper()
	b := baseline{lost: map[string]int64{}, discarded: map[string]int64{}, servers: map[string]bool{}}
	led, err := cs.sim.Ledger(ctx)
	require.NoError(t, err)
	b.ledger = len(led)
	for _, r := range resources {
		info, err := cs.sim.ResourceInfo(ctx, r)
		require.NoError(t, err)
		b.lost[r], b.discarded[r] = info.LostWrites, info.DiscardedWrites
	}
	st, err := cs.sim.State(ctx)
	require.NoError(t, err)
	for _, s := range st.Servers {
		b.servers[s.Site+"/"+s.Name] = true
	}
	return b
}

// expectation is how a run must end: its state, its reference (the same
// run without a kill) to hold its steps against, where its groups must run
// afterwards, and which resources' writes it answers for.
type expectation struct {
	state     string
	ref       *reference
	resources []string
	// sites maps each resource to the site its active replica must be at.
	sites map[string]string
	// groups maps each group to the active site its store record must say.
	groups map[string]string
	// drillSite, for a drill, is where it built its bubble: no server may
	// be left there that was not there before.
	drillSite string
	// mayLose: the run may lose writes (an unplanned failover); any other
	// run must lose none, reported or not.
	mayLose bool
}

// reference is a run without any kill, of the same scenario: its record,
// its children's records and its activities.
type reference struct {
	run        ferry.Run
	children   map[string]ferry.Run // by child workflow id
	activities map[string][]scheduledActivity
}

// verifyRun checks everything the chaos suite promises about one ended run
// and fills in what it counts: whether it ended as expected, duplicate side
// effects since it started, leaked resources and writes lost beyond the
// reported number. Record defects fail the test on the spot (and the run
// then counts as not completed, see chaosTally.track).
func (cs *chaosSystem) verifyRun(t *testing.T, ctx context.Context, end ferry.Run, b baseline, e expectation, o *runOutcome) {
	t.Helper()
	o.Completed = end.State == e.state
	if !o.Completed {
		t.Errorf("run %s ended %s (%s), want %s", end.ID, end.State, end.Message, e.state)
	}

	// Every side effect of the run and its children exactly once.
	led, err := cs.sim.Ledger(ctx)
	require.NoError(t, err)
	kids, err := cs.children(ctx, end.WorkflowID, end.ID)
	require.NoError(t, err)
	runs := map[string]bool{end.ID: true}
	for _, id := range kids {
		runs[id] = true
	}
	var mine []sim.LedgerEntry
	for _, l := range led[b.ledger:] {
		if id, _, ok := strings.Cut(l.Key, "/"); ok && runs[id] {
			mine = append(mine, l)
		}
	}
	se := effects(mine)
	o.Duplicates, o.Replayed = se.Duplicates, se.Replayed
	if se.Duplicates > 0 {
		t.Errorf("run %s: side effects applied more than once: %s", end.ID, strings.Join(se.What, "; "))
	}

	// Nothing leaked.
	st, err := cs.sim.State(ctx)
	require.NoError(t, err)
	for _, bb := range st.Bubbles {
		o.Leaked++
		t.Errorf("run %s: bubble %s (%s) left at %s", end.ID, bb.ID, bb.Name, bb.Site)
	}
	for _, c := range st.Clones {
		o.Leaked++
		t.Errorf("run %s: clone %s of %s left on %s", end.ID, c.ID, c.Resource, c.Backend)
	}
	if e.drillSite != "" {
		for _, s := range st.Servers {
			if s.Site == e.drillSite && !b.servers[s.Site+"/"+s.Name] {
				o.Leaked++
				t.Errorf("run %s: drill server %s left at %s (%s)", end.ID, s.Name, s.Site, s.State)
			}
		}
	}

	// Writes: what the simulator lost or discarded against what the run
	// reported.
	var lost, discarded int64
	for _, r := range e.resources {
		info, err := cs.sim.ResourceInfo(ctx, r)
		require.NoError(t, err)
		lost += info.LostWrites - b.lost[r]
		discarded += info.DiscardedWrites - b.discarded[r]
		if want, ok := e.sites[r]; ok && info.ActiveSite != want {
			t.Errorf("run %s: %s is active at %s, want %s", end.ID, r, info.ActiveSite, want)
		}
	}
	var reportedLost, reportedDiscarded int64
	if end.WritesLost != nil {
		reportedLost = *end.WritesLost
	}
	if end.WritesDiscarded != nil {
		reportedDiscarded = *end.WritesDiscarded
	}
	if lost > reportedLost {
		o.LostBeyond += lost - reportedLost
	}
	if discarded > reportedDiscarded {
		o.LostBeyond += discarded - reportedDiscarded
	}
	if lost != reportedLost || discarded != reportedDiscarded {
		t.Errorf("run %s: the simulator lost %d and discarded %d writes; the run reported %d lost, %d discarded",
			end.ID, lost, discarded, reportedLost, reportedDiscarded)
	}
	if lost > 0 && !e.mayLose {
		t.Errorf("run %s (%s %s) lost %d writes", end.ID, end.Mode, end.Kind, lost)
	}
	if lost > 0 && (end.RPOSeconds == nil || *end.RPOSeconds <= 0) {
		t.Errorf("run %s lost %d writes but reports no data-loss window (rpo_seconds)", end.ID, lost)
	}

	cs.verifyRecord(t, ctx, end, e)
}

// verifyRecord holds the run's record in PostgreSQL, and its children's,
// against the run as the API saw it end and against the reference run.
func (cs *chaosSystem) verifyRecord(t *testing.T, ctx context.Context, end ferry.Run, e expectation) {
	t.Helper()
	rec := cs.storedRun(t, ctx, end.ID)
	require.Equal(t, end.State, rec.State, "run %s: stored state", end.ID)
	require.NotNil(t, rec.Ended, "run %s: no end time stored", end.ID)
	require.NotEmpty(t, rec.Steps, "run %s: no steps stored", end.ID)
	if end.Kind == ferry.KindFailover || end.Kind == ferry.KindEvacuate {
		require.NotNil(t, rec.WritesLost, "run %s: no writes-lost stored", end.ID)
		if end.State == ferry.RunCompleted {
			require.NotNil(t, rec.RTOSeconds, "run %s: no RTO stored", end.ID)
		}
	}
	if e.ref != nil {
		requireSameSteps(t, end.ID, e.ref.run, rec)
		require.Equal(t, normalizeTouched(e.ref.run.Touched), normalizeTouched(rec.Touched), "run %s: touched resources", end.ID)
		children, err := cs.children(ctx, end.WorkflowID, end.ID)
		require.NoError(t, err)
		require.Len(t, children, len(e.ref.children), "run %s: child runs", end.ID)
		for wf, want := range e.ref.children {
			runID, ok := children[wf]
			require.True(t, ok, "run %s: no child %s", end.ID, wf)
			child := cs.storedRun(t, ctx, runID)
			require.Equal(t, want.State, child.State, "child %s of run %s: %s", runID, end.ID, child.Message)
			require.NotNil(t, child.Ended, "child %s of run %s: no end time stored", runID, end.ID)
			requireSameSteps(t, runID, want, child)
		}
	}
	for g, site := range e.groups {
		grp, err := cs.st.GetGroup(ctx, g)
		require.NoError(t, err)
		require.Equal(t, site, grp.ActiveSite, "group %s: stored active site after run %s", g, end.ID)
	}
}

// storedRun reads a run's record straight from PostgreSQL, waiting out a
// restart of the database.
func (cs *chaosSystem) storedRun(t *testing.T, ctx context.Context, id string) ferry.Run {
	t.Helper()
	var rec ferry.Run
	var err error
	for i := 0; i < 120; i++ {
		if rec, err = cs.st.GetRun(ctx, id); err == nil {
			return rec
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.NoError(t, err, "read run %s from PostgreSQL", id)
	return rec
}

// requireSameSteps requires a run's stored steps to be its reference's:
// the same names in the same order, each in the same final state, and
// none left running or pending.
func requireSameSteps(t *testing.T, id string, ref, got ferry.Run) {
	t.Helper()
	name := func(r ferry.Run) []string {
		var out []string
		for _, s := range r.Steps {
			out = append(out, s.Name+"="+s.State)
		}
		return out
	}
	require.Equal(t, name(ref), name(got), "run %s: steps against the run without a kill", id)
	for _, s := range got.Steps {
		require.NotContains(t, []string{ferry.StepRunning, ferry.StepPending}, s.State, "run %s: step %s stored %s", id, s.Name, s.State)
		if s.State == ferry.StepCompleted {
			require.NotNil(t, s.Ended, "run %s: step %s has no end time", id, s.Name)
		}
	}
}

// children maps the workflow id of each child a run started to its run id.
func (cs *chaosSystem) children(ctx context.Context, wfID, runID string) (map[string]string, error) {
	evs, err := cs.history(ctx, wfID, runID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, ev := range evs {
		if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
			out[a.GetWorkflowExecution().GetWorkflowId()] = a.GetWorkflowExecution().GetRunId()
		}
	}
	return out, nil
}

var (
	// generated ids of the simulator's bubbles and clones differ from run
	// to run.
	generatedID = regexp.MustCompile(`\b(bubble|clone)-\d+\b`)
)

// sideEffects is what a run's ledger entries say about exactly-once.
type sideEffects struct {
	// Duplicates are applications of a side effect already applied: the
	// same operation on the same target under the same key, once the
	// numbers a retry adds to a key are taken off.
	Duplicates int
	// Replayed counts calls the simulator answered from its idempotency
	// ledger: a retried activity asking again, changing nothing.
	Replayed int
	What     []string
}

var (
	// attemptPart is the suffix FinalSync puts on each attempt's key, and
	// retryPart the one an operator's retry puts on a step ("promote#2").
	attemptPart = regexp.MustCompile(`/attempt-\d+`)
	retryPart   = regexp.MustCompile(`#\d+`)
)

// effects reads a run's ledger entries. The simulator never applies one key
// twice, so a duplicate can only come from a key that changed between two
// tries of the same thing: that is what this looks for, counting an
// operator's retry that acts again on what had already taken effect as a
// duplicate too. The final sync is left out: it is the wait loop of its
// step, each attempt a new sync on purpose, and a sync only moves the
// replicas on to where they would get anyway.
func effects(entries []sim.LedgerEntry) sideEffects {
	var se sideEffects
	count := map[string]int{}
	for _, e := range entries {
		if e.Outcome == sim.OutcomeReplayed {
			se.Replayed++
		}
		if e.Outcome != sim.OutcomeApplied || e.Op == "storage.sync" || e.Key == "" {
			continue
		}
		stem := retryPart.ReplaceAllString(attemptPart.ReplaceAllString(e.Key, ""), "")
		k := e.Op + " on " + e.Target + " as " + stem
		count[k]++
	}
	for k, c := range count {
		if c < 2 {
			continue
		}
		se.Duplicates += c - 1
		se.What = append(se.What, fmt.Sprintf("%s (%d times)", k, c))
	}
	sort.Strings(se.What)
	return se
}

func normalizeTouched(ts []string) []string {
	out := make([]string, 0, len(ts))
	for _, s := range ts {
		out = append(out, generatedID.ReplaceAllString(s, "$1-N"))
	}
	sort.Strings(out)
	return out
}
