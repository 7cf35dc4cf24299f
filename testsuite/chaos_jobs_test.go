package testsuite

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
)

// chaosJob is one thing a chaos system does from home: a reference run, a
// run with a kill point, a restart scenario. Jobs of one system run one
// after the other; systems run side by side.
type chaosJob struct {
	name string
	run  func(t *testing.T, ctx context.Context, cs *chaosSystem)
}

// jobQueue hands jobs to the systems in phases: the next phase (built from
// what the previous one learned, such as kill points from reference runs)
// starts once every job of the previous one has finished.
type jobQueue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	pending  []chaosJob
	running  int
	phases   []func() []chaosJob
	total    int
	finished int
}

func newJobQueue(first []chaosJob, later ...func() []chaosJob) *jobQueue {
	q := &jobQueue{pending: first, phases: later, total: len(first)}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// next blocks until a job is ready, and returns false when there are none
// left.
func (q *jobQueue) next() (chaosJob, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if len(q.pending) > 0 {
			j := q.pending[0]
			q.pending = q.pending[1:]
			q.running++
			return j, true
		}
		if q.running == 0 {
			if len(q.phases) == 0 {
				return chaosJob{}, false
			}
			next := q.phases[0]
			q.phases = q.phases[1:]
			q.pending = next()
			q.total += len(q.pending)
			continue
		}
		q.cond.Wait()
	}
}

func (q *jobQueue) done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running--
	q.finished++
	q.cond.Broadcast()
}

// counts says how many jobs there were and how many finished.
func (q *jobQueue) counts() (total, finished int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total, q.finished
}

// referenceJob runs a scenario without any kill and keeps what the kill
// points are held against: its record, its children's, its activities.
func referenceJob(sc *killScenario, out **reference, tally *chaosTally) chaosJob {
	return chaosJob{name: "reference/" + sc.name, run: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
		cs.home(t, ctx)
		sc.prepare(t, ctx, cs)
		b := cs.baseline(t, ctx, sc.expect.resources)
		o := tally.track(t, sc.name, 0)
		resp := cs.start(t, ctx, sc.req)
		end := cs.waitEnd(t, ctx, resp.ID)
		cs.verifyRun(t, ctx, end, b, sc.expect, o)

		ref := &reference{run: cs.storedRun(t, ctx, end.ID), children: map[string]ferry.Run{}, activities: map[string][]scheduledActivity{}}
		var err error
		ref.activities[""], err = cs.scheduledActivities(ctx, resp.WorkflowID, resp.ID)
		require.NoError(t, err)
		kids, err := cs.children(ctx, resp.WorkflowID, resp.ID)
		require.NoError(t, err)
		for _, wf := range sc.children {
			runID, ok := kids[wf]
			require.True(t, ok, "reference %s started no child %s", sc.name, wf)
			ref.children[wf] = cs.storedRun(t, ctx, runID)
			ref.activities[wf], err = cs.scheduledActivities(ctx, wf, runID)
			require.NoError(t, err)
		}
		for wf, runID := range kids {
			if _, ok := ref.children[wf]; !ok {
				ref.children[wf] = cs.storedRun(t, ctx, runID)
			}
		}
		if !t.Failed() {
			*out = ref
		}
	}}
}

// killJob is one kill point: the scenario's run, the worker killed -9 at
// the point, restarted at once, and every promise checked when the run
// has ended.
func killJob(kp killPoint, ref *reference, tally *chaosTally) chaosJob {
	return chaosJob{name: kp.String(), run: func(t *testing.T, ctx context.Context, cs *chaosSystem) {
		sc := kp.sc
		cs.home(t, ctx)
		sc.prepare(t, ctx, cs)
		e := sc.expect
		e.ref = ref
		b := cs.baseline(t, ctx, e.resources)
		o := tally.track(t, sc.name, 1)
		armed := kp.inside != nil && kp.inside.fault != nil && kp.inside.armed
		if kp.inside != nil && kp.inside.fault != nil && !armed {
			_, err := cs.sim.InjectFault(ctx, *kp.inside.fault)
			require.NoError(t, err)
		}
		resp := cs.start(t, ctx, sc.req)
		wf, runID := resp.WorkflowID, resp.ID
		if kp.child != "" {
			var err error
			runID, err = cs.childRun(ctx, resp.WorkflowID, resp.ID, kp.child)
			require.NoError(t, err)
			wf = kp.child
		}
		if armed {
			_, err := cs.awaitScheduled(ctx, wf, runID, kp.n-1)
			require.NoError(t, err)
			_, err = cs.sim.InjectFault(ctx, *kp.inside.fault)
			require.NoError(t, err)
		}
		ev, err := cs.awaitScheduled(ctx, wf, runID, kp.n)
		require.NoError(t, err)
		require.Equal(t, kp.activity, ev.Type, "the run took another path than its reference")
		if kp.inside != nil {
			time.Sleep(kp.inside.delay)
		}
		cs.killWorker(0)
		killed := time.Now()
		closed, err := cs.activityClosed(ctx, wf, runID, ev.EventID)
		require.NoError(t, err)
		cs.restartWorker(t, 0)
		end := cs.waitEnd(t, ctx, resp.ID)
		cs.verifyRun(t, ctx, end, b, e, o)
		where := "in flight"
		if closed {
			where = "after it ended"
		}
		tally.point("%s: killed %s; run %s %s %s after the kill; %d calls answered from the idempotency ledger",
			kp, where, end.ID, end.State, time.Since(killed).Round(time.Second), o.Replayed)
	}}
}
