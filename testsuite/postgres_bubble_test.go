package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/netns"
	"github.com/ferrydr/ferry/drivers/postgres"
	"github.com/ferrydr/ferry/drivers/router"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// newPGBubbleEnv is the PostgreSQL-backed group with the network port on
// real Linux network namespaces: both sites are the host's own network
// (production), and a drill's bubble is a fresh namespace. The group has
// no servers here (the simulator cannot boot into a namespace), so the
// drill is storage and checks: the clone and the sql check in the bubble.
func newPGBubbleEnv(t *testing.T, tc client.Client) (*pgEnv, *netns.Adapter) {
	t.Helper()
	require.Zero(t, os.Geteuid(), "the bubble test makes network namespaces: run it as root")
	require.NoError(t, netns.RequireTools(), "install iproute2 and nftables")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &pgEnv{t: t, ctx: ctx, tc: tc, tq: "pg-bubble-" + strings.ReplaceAll(t.Name(), "/", "-")}
	e.pair = postgres.NewTestPair(t)
	e.st = storetest.New(t)
	inv := ledgerInventory()
	inv.Groups[0].Tiers, inv.Groups[0].DNSRecords = nil, nil
	require.NoError(t, e.st.ApplyInventory(ctx, inv))

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "fpgb-" + hex.EncodeToString(b) + "-"
	nsa, err := netns.New(netns.Config{
		StateDir: t.TempDir(), Sites: map[string]string{"site-a": "", "site-b": ""}, BubblePrefix: prefix,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		// Whatever a failed run left behind.
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		left, _ := nsa.Bubbles()
		for _, ns := range left {
			_ = netns.DeleteNamespace(cctx, ns)
		}
	})

	e.cloud = sim.NewCloud(sim.Options{BootTime: 20 * time.Millisecond})
	require.NoError(t, e.cloud.LoadInventory(ferry.Inventory{Sites: inv.Sites}))
	simc := sim.NewInProcess(e.cloud)
	storage := router.NewStorage(router.Of("sim", simc.Set()))
	require.NoError(t, storage.Add(router.Adapter{Name: "postgres", Storage: e.pair.Adapter},
		[]string{"pg-a", "pg-b"}, router.ResourcesOn(inv, "pg-a", "pg-b")))
	e.verify = e.pair.Adapter.Verify()
	verify := router.NewVerify(simc)
	verify.Route(ferry.CheckSQL, e.verify.Owns, e.verify)
	set := storage.Set(simc.Set())
	set.Network = nsa
	set.Verify = verify

	w := worker.New(tc, e.tq, &activities.Activities{Drivers: set, Store: e.st}, worker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return e, nsa
}

// pgIsReady asks pg_isready, inside namespace ns ("" the host), whether a
// server answers at 127.0.0.1:port.
func pgIsReady(ctx context.Context, ns string, port int) error {
	bin := filepath.Join("/usr/lib/postgresql/15/bin", "pg_isready")
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-t", "2"}
	if ns == "" {
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			return errors.New(strings.TrimSpace(string(out)))
		}
		return nil
	}
	_, err := netns.RunIn(ctx, ns, append([]string{bin}, args...)...)
	return err
}

// alive tells a running process from a gone or dead one (a zombie waits
// for init to reap it: it runs nothing).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// postmasterPid reads a clone's server pid from its postmaster.pid.
func postmasterPid(t *testing.T, root, clone string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "clones", clone, "data", "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
	require.NoError(t, err)
	return pid
}

// TestPostgresDrillInNetnsBubble drills the PostgreSQL-backed group through
// Temporal with the bubble a real network namespace: the clone's server
// runs inside it and answers the drill's sql check there, nothing on the
// host reaches it, nothing in it reaches production, replication keeps
// running, and the cleanup leaves no namespace, process or clone.
func TestPostgresDrillInNetnsBubble(t *testing.T) {
	tc := devserver.Start(t).Client()
	e, nsa := newPGBubbleEnv(t, tc)
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
	}, 2*time.Minute, 100*time.Millisecond, "the drill never held its bubble")
	require.Equal(t, ferry.RunPaused, live.State, "the drill ended early: %s %+v", live.Message, live.Steps)

	bubbles, err := nsa.Bubbles()
	require.NoError(t, err)
	require.Len(t, bubbles, 1, "the drill's bubble is a real namespace")
	bubble := bubbles[0]

	// The drill's sql check passed, reading the clone from inside the
	// bubble.
	c := checkOutcome(t, live)
	require.True(t, c.Passed, c.Detail)
	require.Contains(t, c.Detail, "drill clone")
	require.Contains(t, c.Detail, "in bubble "+bubble)

	// The clone's server runs inside the bubble's namespace.
	clones, err := e.pair.CloneDirs()
	require.NoError(t, err)
	require.Len(t, clones, 1)
	clone := clones[0]
	in, err := e.pair.Adapter.CloneBubble(clone)
	require.NoError(t, err)
	require.Equal(t, bubble, in)
	pid := postmasterPid(t, e.pair.Root, clone)
	pids, err := netns.Pids(e.ctx, bubble)
	require.NoError(t, err)
	require.Contains(t, pids, pid, "the clone's postmaster is not in the bubble's namespace")

	// It answers inside the bubble, with the cloned rows; from the host its
	// address answers nothing; from inside, production answers nothing.
	host, port, err := e.pair.Adapter.CloneAddr(clone)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.NoError(t, pgIsReady(e.ctx, bubble, port), "the clone does not answer inside the bubble")
	cloneRows, err := e.pair.CloneRows(e.ctx, clone)
	require.NoError(t, err)
	require.Subset(t, cloneRows, ids(before))
	require.Error(t, pgIsReady(e.ctx, "", port), "the clone answers on the host")
	conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(e.ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err == nil {
		_ = conn.Close()
	}
	require.Error(t, err, "a connection from the host reached the clone's address")
	for _, n := range []postgres.Node{e.pair.Primary, e.pair.Standby} {
		require.NoError(t, pgIsReady(e.ctx, "", n.Port), "node %s does not answer on the host", n.Name)
		require.Error(t, pgIsReady(e.ctx, bubble, n.Port), "production node %s answers inside the bubble", n.Name)
	}
	// A check from outside the bubble does not read the clone.
	spec := ledgerInventory().Groups[0].Checks[0]
	res, err := e.verify.Check(e.ctx, "site-b", "", drivers.CheckSpec{Name: spec.Name, Type: spec.Type, Target: spec.Target, Expect: spec.Expect})
	require.NoError(t, err)
	require.False(t, res.Passed, "a check outside the bubble read the clone: %s", res.Detail)

	// Replication keeps running: a row written on the primary during the
	// drill reaches the standby, and not the clone.
	during := e.write("site-a", 1)
	e.waitReplicated("site-b", during)
	cloneRows, err = e.pair.CloneRows(e.ctx, clone)
	require.NoError(t, err)
	require.NotContains(t, cloneRows, during[0].ID)

	h, err := e.tc.UpdateWorkflow(e.ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateResume,
		Args: []any{workflows.SteerRequest{By: "e2e"}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	require.NoError(t, h.Get(e.ctx, nil))
	r := e.result(run)
	require.Equal(t, ferry.RunCompleted, r.State, "drill: %s %+v", r.Message, r.Steps)

	// Nothing is left: no namespace, no clone process, no clone directory.
	left, err := nsa.Bubbles()
	require.NoError(t, err)
	require.Empty(t, left)
	require.False(t, netns.Exists(bubble))
	require.Eventually(t, func() bool { return !alive(pid) }, 10*time.Second, 50*time.Millisecond, "the clone's postmaster %d still runs", pid)
	clones, err = e.pair.CloneDirs()
	require.NoError(t, err)
	require.Empty(t, clones)
	after := e.write("site-a", 1)
	e.waitReplicated("site-b", after)
}
