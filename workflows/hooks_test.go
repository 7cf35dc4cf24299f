package workflows_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/workflows"
)

// withHooks stores the demo group with the given hooks.
func (e *env) withHooks(group string, hooks ...ferry.Hook) ferry.Group {
	e.t.Helper()
	g, err := e.st.GetGroup(e.ctx, group)
	require.NoError(e.t, err)
	g.Hooks = hooks
	require.NoError(e.t, g.Validate())
	_, err = e.st.PutGroup(e.ctx, g)
	require.NoError(e.t, err)
	return g
}

func TestHooksRunAtTheirPointsWithTheRunsContext(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var posted []map[string]string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		b, _ := io.ReadAll(r.Body)
		require.NoError(t, json.Unmarshal(b, &body))
		mu.Lock()
		posted = append(posted, body)
		mu.Unlock()
		_, _ = io.WriteString(w, "dns cache flushed")
	}))
	defer hook.Close()

	g := e.withHooks("shop",
		ferry.Hook{Name: "cassandra-flush", Point: ferry.HookBeforeQuiesce,
			Command: []string{"sh", "-c", `echo "nodetool flush for $FERRY_GROUP at $FERRY_POINT ($FERRY_KIND)"`}},
		ferry.Hook{Name: "notify", Point: ferry.HookAfterPromote, URL: hook.URL + "/notify?token=s3cr3t-hook-token"},
		ferry.Hook{Name: "warm-cache", Point: ferry.HookAfterTier, Command: []string{"sh", "-c", `echo "warmed $FERRY_TIER"`}},
	)
	run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
	r := e.result(run)
	recordHistory(t, run, "hooks")
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)

	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	require.Equal(t, workflows.FailoverSteps(g, ferry.ModePlanned), names, "hook steps stand where the plan says")
	require.Less(t, indexOf(names, "hook:cassandra-flush"), indexOf(names, workflows.StepQuiesce))
	require.Greater(t, indexOf(names, "hook:notify"), indexOf(names, workflows.StepPromote))

	flush := stepOf(t, r, "hook:cassandra-flush")
	require.Equal(t, ferry.StepCompleted, flush.State)
	require.Equal(t, "nodetool flush for shop at before_quiesce (failover)\n", flush.Output)
	require.Equal(t, "dns cache flushed", stepOf(t, r, "hook:notify").Output)
	for _, tier := range []string{"database", "application", "web"} {
		st := stepOf(t, r, "hook:warm-cache@"+tier)
		require.Equal(t, ferry.StepCompleted, st.State)
		require.Equal(t, "warmed "+tier+"\n", st.Output)
	}
	// The webhook's token stays in the inventory: it is in no event of the
	// run's history (invariant 7).
	it := temporalClient.GetWorkflowHistory(e.ctx, run.GetID(), run.GetRunID(), false, 0)
	events, sawHookInput := 0, false
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		require.NotContains(t, ev.String(), "s3cr3t-hook-token", "event %d carries the hook's token", ev.GetEventId())
		// The scan reads payloads as text: the hook's own input shows.
		sawHookInput = sawHookInput || strings.Contains(ev.String(), "after_promote")
		events++
	}
	require.Greater(t, events, 10)
	require.True(t, sawHookInput, "the history scan does not see payloads")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, posted, 1)
	require.Equal(t, run.GetRunID(), posted[0]["run_id"])
	require.Equal(t, "shop", posted[0]["group"])
	require.Equal(t, ferry.HookAfterPromote, posted[0]["point"])
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func TestHookFailurePolicies(t *testing.T) {
	t.Run("continue records the failure and goes on", func(t *testing.T) {
		e := newEnv(t)
		e.withHooks("shop", ferry.Hook{Name: "flaky", Point: ferry.HookAfterSnapshot, OnFailure: ferry.HookContinue,
			Command: []string{"sh", "-c", "echo broken; exit 3"}})
		r := e.result(e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned}))
		require.Equal(t, ferry.RunCompleted, r.State, r.Message)
		st := stepOf(t, r, "hook:flaky")
		require.Equal(t, ferry.StepFailed, st.State)
		require.Equal(t, "broken\n", st.Output)
		require.Contains(t, st.Error, "exit status 3")
		require.Contains(t, r.Flags, "hook-failed:flaky")
	})
	t.Run("abort before promote rolls back", func(t *testing.T) {
		e := newEnv(t)
		before := e.state()
		e.withHooks("shop", ferry.Hook{Name: "gate", Point: ferry.HookAfterSnapshot,
			Command: []string{"sh", "-c", "echo refusing; exit 1"}})
		run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
		r := e.result(run)
		recordHistory(t, run, "hook-abort")
		require.Equal(t, ferry.RunRolledBack, r.State)
		require.Contains(t, r.Message, "hook gate")
		require.Equal(t, ferry.StepCompensated, stepOf(t, r, workflows.StepQuiesce).State)
		require.Equal(t, ferry.StepPending, stepOf(t, r, workflows.StepPromote).State)
		require.Equal(t, before, e.state())
	})
	t.Run("pause waits for the operator, even before promote", func(t *testing.T) {
		e := newEnv(t)
		marker := t.TempDir() + "/ok"
		e.withHooks("shop", ferry.Hook{Name: "check-marker", Point: ferry.HookBeforeQuiesce, OnFailure: ferry.HookPause,
			Command: []string{"test", "-e", marker}})
		run := e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned})
		p := e.waitState(run, ferry.RunPaused)
		require.Equal(t, ferry.StepFailed, stepOf(t, p, "hook:check-marker").State)
		require.NoError(t, writeFile(marker))
		require.NoError(t, e.steer(run, workflows.UpdateRetry, "ivan"))
		r := e.result(run)
		require.Equal(t, ferry.RunCompleted, r.State, r.Message)
		st := stepOf(t, r, "hook:check-marker")
		require.Equal(t, ferry.StepCompleted, st.State)
		require.Equal(t, 2, st.Attempts)
	})
	t.Run("a hook that outlives its timeout fails", func(t *testing.T) {
		e := newEnv(t)
		e.withHooks("shop", ferry.Hook{Name: "slow", Point: ferry.HookAfterPromote, OnFailure: ferry.HookContinue,
			TimeoutSeconds: 1, Command: []string{"sleep", "30"}})
		r := e.result(e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned}))
		require.Equal(t, ferry.RunCompleted, r.State, r.Message)
		require.Contains(t, stepOf(t, r, "hook:slow").Error, "timed out")
	})
}

func writeFile(path string) error { return os.WriteFile(path, nil, 0o644) }

func TestHookCommandsDoNotSeeTheWorkersSecrets(t *testing.T) {
	t.Setenv("FERRY_DATABASE_URL", "postgres://ferry:s3cret@db/ferry")
	t.Setenv("FERRY_TEST_SECRET", "hunter2")
	e := newEnv(t)
	e.withHooks("shop", ferry.Hook{Name: "env", Point: ferry.HookAfterPromote, Command: []string{"env"}})
	r := e.result(e.start(workflows.FailoverInput{Group: "shop", Mode: ferry.ModePlanned}))
	require.Equal(t, ferry.RunCompleted, r.State, r.Message)
	out := stepOf(t, r, "hook:env").Output
	require.Contains(t, out, "FERRY_GROUP=shop")
	require.Contains(t, out, "FERRY_POINT=after_promote")
	require.NotContains(t, out, "s3cret")
	require.NotContains(t, out, "hunter2")
}
