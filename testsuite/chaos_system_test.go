package testsuite

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/store"
)

// chaosSystem is a Ferry deployment whose every part the chaos suite can
// kill: `ferry sim`, `ferry server` and `ferry worker` processes, a Temporal
// dev server that keeps its state in a file, and a PostgreSQL cluster of
// its own. It embeds the e2e system, so the e2e helpers (cli, applyDemo)
// work on it.
type chaosSystem struct {
	*system
	name     string
	temporal *chaosTemporal
	pg       *privatePG
	workers  []*proc
	tc       client.Client
	st       *store.Store
}

// chaosBootTime is how long a simulated server boots: long enough that a
// kill lands inside a boot step's wait for health.
const chaosBootTime = time.Second

// startChaosSystem starts a deployment with one worker and the demo
// inventory applied through the CLI, as an operator would.
func startChaosSystem(t *testing.T, name, bin string) *chaosSystem {
	t.Helper()
	dir := t.TempDir()
	pg := startPrivatePG(t)
	dbURL := pg.createDB("ferry")
	temporal := startChaosTemporal(t, dir)
	apiAddr, simAddr := freeAddr(t), freeAddr(t)
	s := &system{
		t: t, bin: bin, logs: dir,
		apiURL: "http://" + apiAddr, simURL: "http://" + simAddr, dbURL: dbURL,
	}
	s.env = append(os.Environ(),
		"FERRY_TEMPORAL_ADDRESS="+temporal.hostPort,
		"FERRY_DATABASE_URL="+s.dbURL,
		"FERRY_HTTP_ADDR="+apiAddr,
		"FERRY_API_URL="+s.apiURL,
		"FERRY_SIM_ADDR="+simAddr,
		"FERRY_SIM_URL="+s.simURL,
		"FERRY_TASK_QUEUE=chaos-"+name,
	)
	// The install's first admin token, as the e2e systems make it.
	s.token = bootstrapToken(t, bin, s.env)
	s.env = append(s.env, "FERRY_TOKEN="+s.token)
	s.api = apiclient.New(s.apiURL, &http.Client{Timeout: 30 * time.Second}, apiclient.WithToken(s.token))
	s.sim = sim.NewClient(s.simURL, &http.Client{Timeout: 30 * time.Second})
	cs := &chaosSystem{system: s, name: name, temporal: temporal, pg: pg}

	// A background workload writes while runs go on, so a lost write has
	// somewhere to come from.
	require.NoError(t, newProc(t, dir, "sim", bin, s.env, "sim", "--demo",
		"--boot-time", chaosBootTime.String(), "--lag", "0s", "--workload-interval", "200ms").start())
	require.NoError(t, newProc(t, dir, "server", bin, s.env, "server").start())
	cs.addWorker(t)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return s.api.Ready(ctx) == nil
	}, 2*time.Minute, 100*time.Millisecond, "ferry server never became ready; logs in %s", dir)

	var err error
	cs.tc, err = client.Dial(client.Options{HostPort: temporal.hostPort, Logger: quietLogger{}})
	require.NoError(t, err)
	t.Cleanup(cs.tc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs.st, err = store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(cs.st.Close)

	require.Contains(t, s.applyDemo(), "group/shop created")
	cs.addLab(t, ctx)
	return cs
}

// buildFerry builds the ferry binary once for every system of a test.
func buildFerry(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferry")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	build.Dir = repoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build ferry: %s", out)
	return bin
}

// bind makes t the test the system's helpers report to: each job of a
// system is a subtest of its own.
func (cs *chaosSystem) bind(t *testing.T) { cs.system.t = t }

// addWorker starts one more `ferry worker` on the system's task queue; t's
// end stops it.
func (cs *chaosSystem) addWorker(t *testing.T) *proc {
	t.Helper()
	w := newProc(t, cs.logs, fmt.Sprintf("worker-%d", len(cs.workers)+1), cs.bin, cs.env, "worker")
	require.NoError(t, w.start())
	cs.workers = append(cs.workers, w)
	return w
}

// killWorker is kill -9 of worker i; restartWorker starts it again.
func (cs *chaosSystem) killWorker(i int) { cs.workers[i].kill() }

func (cs *chaosSystem) restartWorker(t *testing.T, i int) {
	t.Helper()
	require.NoError(t, cs.workers[i].start())
}

// start starts a run through the API, as the e2e tests do, retrying while
// the API cannot reach Temporal or PostgreSQL (a restart in progress).
func (cs *chaosSystem) start(t *testing.T, ctx context.Context, req apiclient.StartRunRequest) apiclient.StartRunResponse {
	t.Helper()
	if req.RequestedBy == "" {
		req.RequestedBy = "chaos"
	}
	var resp apiclient.StartRunResponse
	retryFor(t, time.Minute, func() (err error) {
		resp, err = cs.api.StartRun(ctx, req)
		return err
	}, "start %s of %s%s", req.Kind, req.Group, req.Site)
	return resp
}

// retryFor calls fn until it succeeds, failing the test with its last
// error after d.
func retryFor(t *testing.T, d time.Duration, fn func() error, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitEnd waits until the run's record says it ended: long enough for the
// activities a killed worker held to time out (two minutes for short ones)
// and be retried. An API that cannot reach PostgreSQL for a moment is
// waited out.
func (cs *chaosSystem) waitEnd(t *testing.T, ctx context.Context, id string) ferry.Run {
	t.Helper()
	var r ferry.Run
	var last error
	deadline := time.Now().Add(8 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r, last = cs.api.GetRun(ctx, id)
		if last == nil && ferry.RunEnded(r.State) {
			return r
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("run %s did not end (last state %q, message %q, error %v); logs in %s", id, r.State, r.Message, last, cs.logs)
	return r
}

// waitState waits until the run's live state is want (paused, say).
func (cs *chaosSystem) waitState(t *testing.T, ctx context.Context, id, want string) ferry.Run {
	t.Helper()
	var r ferry.Run
	require.Eventually(t, func() bool {
		var err error
		r, err = cs.api.GetRun(ctx, id)
		return err == nil && r.State == want
	}, 5*time.Minute, 250*time.Millisecond, "run %s never became %s (last %q: %s)", id, want, r.State, r.Message)
	return r
}

// steer sends an operator's decision through the API.
func (cs *chaosSystem) steer(t *testing.T, ctx context.Context, id, action string) ferry.Run {
	t.Helper()
	var r ferry.Run
	retryFor(t, time.Minute, func() (err error) {
		r, err = cs.api.Steer(ctx, id, action, apiclient.SteerRequest{By: "chaos-operator"})
		return err
	}, "%s run %s", action, id)
	return r
}
