package workflows_test

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/workflows"
)

// steeringRuns is how many failovers the property test steers at random.
const steeringRuns = 20

// settleWithin bounds how long a run may take to end once the random
// signals stop and the finisher takes over.
const settleWithin = 45 * time.Second

// steeringFaults give retry and skip something to act on: none, a failure
// before promote (the run rolls back by itself), failures after promote
// (the run pauses for a decision) and a slow step (a window for pause).
var steeringFaults = []*sim.Fault{
	nil,
	nil,
	{Op: "compute.quiesce", Kind: drivers.Permanent},
	{Op: "storage.promote", Target: "b-block", Kind: drivers.Permanent},
	{Op: "dns.replace", Kind: drivers.Permanent},
	{Op: "verify.check", Kind: drivers.Permanent},
	{Op: "storage.failover_completed", Target: "b-volume-3", Kind: drivers.Unreachable},
	{Op: "storage.snapshot_group", Latency: 700 * time.Millisecond},
}

var steeringActions = []string{
	workflows.UpdateApprove, workflows.UpdatePause, workflows.UpdateResume,
	workflows.UpdateAbort, workflows.UpdateRetry, workflows.UpdateSkip,
}

// TestRandomSteeringNeverLeavesARunStuck sends random operator updates at
// random times to real failovers, some with an injected fault. Once the
// signals stop, a finisher that only does what an operator would (approve,
// resume, then retry, skip or abort a failed step) must bring every run to
// a final state within settleWithin; the record is in PostgreSQL; a run
// that rolled back or was aborted before promote left the cloud as it was;
// a run that completed moved every resource; no side effect applied twice.
// FERRY_STEERING_SEED=<seed> replays the same choices (timings still vary).
func TestRandomSteeringNeverLeavesARunStuck(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("FERRY_STEERING_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, "FERRY_STEERING_SEED")
	}
	t.Logf("seed %d (rerun with FERRY_STEERING_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	// Every choice of a case is drawn here, in order, so a seed names the
	// same cases whatever happens inside them. A group's runs share its
	// workflow id, so each group's cases run in turn, the groups at once.
	byGroup := map[string][]steeringCase{}
	for i := range steeringRuns {
		c := steeringCase{
			n:            i,
			group:        []string{"shop", "crm"}[rng.Intn(2)],
			skipApproval: rng.Intn(3) == 0,
			fault:        steeringFaults[rng.Intn(len(steeringFaults))],
			seed:         rng.Int63(),
		}
		byGroup[c.group] = append(byGroup[c.group], c)
	}
	for _, group := range []string{"shop", "crm"} {
		t.Run(group, func(t *testing.T) {
			t.Parallel()
			for _, c := range byGroup[group] {
				t.Run(fmt.Sprintf("%02d", c.n), func(t *testing.T) { c.check(t) })
			}
		})
	}
}

type steeringCase struct {
	n            int
	group        string
	skipApproval bool
	fault        *sim.Fault
	seed         int64
}

func (c steeringCase) check(t *testing.T) {
	rng := rand.New(rand.NewSource(c.seed))
	e := newEnv(t)
	g := demoGroup(t, c.group)
	before := e.state()
	if c.fault != nil {
		_, err := e.sim.InjectFault(e.ctx, *c.fault)
		require.NoError(t, err)
	}
	t.Logf("group %s, skip approval %v, fault %+v", c.group, c.skipApproval, c.fault)
	run := e.start(workflows.FailoverInput{
		Group: c.group, Mode: ferry.ModePlanned, RequestedBy: "property", SkipApproval: c.skipApproval,
	})

	// Random operators: any update at any time. A refusal is an answer.
	var sent []string
	for range rng.Intn(8) {
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		action := steeringActions[rng.Intn(len(steeringActions))]
		err := e.steer(run, action, "chaos")
		requireSteerAnswer(t, err, action)
		sent = append(sent, fmt.Sprintf("%s:%v", action, err == nil))
	}
	t.Logf("random updates (action:accepted): %v", sent)

	// The signals stop. The finisher drives the run to its end; before it
	// decides on a failed step the faults clear, as an operator would fix
	// what failed before a retry.
	var final []string
	deadline := time.Now().Add(settleWithin)
	for !closed(t, e, run) {
		require.True(t, time.Now().Before(deadline),
			"run stuck: not ended %s after the signals stopped; last progress %+v; finisher sent %v",
			settleWithin, e.progress(run), final)
		p := e.progress(run)
		action := ""
		switch {
		case p.State == ferry.RunWaitingApproval:
			action = workflows.UpdateApprove
		case p.State == ferry.RunPaused && strings.Contains(p.Message, "retry, skip or abort"):
			require.NoError(t, e.sim.ClearFaults(e.ctx))
			action = []string{workflows.UpdateRetry, workflows.UpdateSkip, workflows.UpdateAbort}[rng.Intn(3)]
		case p.State == ferry.RunPaused:
			action = workflows.UpdateResume
		}
		if action == "" {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		err := e.steer(run, action, "finisher")
		requireSteerAnswer(t, err, action)
		final = append(final, fmt.Sprintf("%s:%v", action, err == nil))
	}
	t.Logf("finisher updates: %v", final)

	r := e.result(run)
	require.True(t, ferry.RunEnded(r.State), "the run returned in state %s", r.State)
	rec, err := e.st.GetRun(e.ctx, run.GetRunID())
	require.NoError(t, err, "the run's record is in PostgreSQL")
	require.Equal(t, r.State, rec.State, "the stored record agrees with the run")
	t.Logf("ended %s: %s", r.State, r.Message)

	// Rolled back is always before promote; an abort after any batch was
	// promoted says so in the run's message.
	beforePromote := r.State == ferry.RunRolledBack ||
		r.State == ferry.RunAborted && !strings.Contains(r.Message, "after "+workflows.StepPromote)
	switch {
	case beforePromote:
		require.Eventually(t, func() bool { return assertEqualState(before, e.state()) }, 5*time.Second, 50*time.Millisecond,
			"a run that ended %s before promote changed the cloud:\nbefore %+v\nafter  %+v", r.State, before, e.state())
	case r.State == ferry.RunCompleted && !slices.Contains(r.Flags, "skipped:"+workflows.StepPromote):
		for _, res := range groupResources(g) {
			info, err := e.sim.ResourceInfo(e.ctx, res)
			require.NoError(t, err)
			require.Equal(t, "site-b", info.ActiveSite, "a completed run left %s behind", res)
		}
	}
	require.NotEqual(t, ferry.RunFailed, r.State, "operator steering alone must not fail a run: %s", r.Message)

	ledger, err := e.sim.Ledger(e.ctx)
	require.NoError(t, err)
	applied := map[string]int{}
	for _, l := range ledger {
		if l.Outcome == sim.OutcomeApplied {
			applied[l.Key]++
			require.Equal(t, 1, applied[l.Key], "key %s applied twice", l.Key)
		}
	}
}

// requireSteerAnswer accepts the answers an operator may get: done, a
// validator's refusal, or that the run has already ended.
func requireSteerAnswer(t *testing.T, err error, action string) {
	t.Helper()
	if err == nil {
		return
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == workflows.ErrRejected {
		return
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return // the run ended between the look and the update
	}
	require.NoError(t, err, "%s: not a refusal an operator can act on", action)
}

func closed(t *testing.T, e *env, run client.WorkflowRun) bool {
	t.Helper()
	d, err := temporalClient.DescribeWorkflowExecution(e.ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	return d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}
