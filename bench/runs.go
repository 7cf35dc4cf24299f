package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
)

// EvacResult is one evacuation's figures.
type EvacResult struct {
	Wall    time.Duration // the evacuation workflow's start to close, as Temporal recorded them
	RTO     time.Duration // the run's own RTO: its start to the last group verified
	State   string
	Message string
	Actions Actions // the evacuation's and its children's histories
	CPU     time.Duration
	PeakRSS int64 // the largest worker's
	Floor   FloorInput
}

// Evacuate evacuates a site through the API, waits for the end through
// Temporal (a client watching through the API would load the worker with
// progress queries) and reads the figures from the histories and the
// workers' /proc.
func (d *Deployment) Evacuate(ctx context.Context, site string, concurrency int) (EvacResult, error) {
	before, err := d.WorkerSamples()
	if err != nil {
		return EvacResult{}, err
	}
	var started StartRunResponse
	err = d.API.Do(ctx, http.MethodPost, "/v1/runs", StartRunRequest{
		Kind: ferry.KindEvacuate, Site: site, RequestedBy: "ferry-bench",
		Options: map[string]any{"concurrency": concurrency, "skip_approval": true},
	}, &started)
	if err != nil {
		return EvacResult{}, fmt.Errorf("start the evacuation: %w", err)
	}
	var run ferry.Run
	if err := d.cfg.Temporal.GetWorkflow(ctx, started.WorkflowID, started.ID).Get(ctx, &run); err != nil {
		return EvacResult{}, fmt.Errorf("evacuation %s: %w", started.ID, err)
	}
	after, err := d.WorkerSamples()
	if err != nil {
		return EvacResult{}, err
	}
	res := EvacResult{State: run.State, Message: run.Message}
	for i := range after {
		res.CPU += after[i].CPU - before[i].CPU
		res.PeakRSS = max(res.PeakRSS, after[i].PeakRSS)
	}
	if run.RTOSeconds != nil {
		res.RTO = time.Duration(*run.RTOSeconds * float64(time.Second))
	}
	parent, err := History(ctx, d.cfg.Temporal, started.WorkflowID, started.ID)
	if err != nil {
		return res, err
	}
	s, e := Span(parent)
	res.Wall = time.Duration(e - s)
	res.Actions = Count(parent)
	res.Floor.Pre, res.Floor.PerChild, res.Floor.Post = ParentShape(parent)
	res.Floor.Concurrency = concurrency
	for _, c := range run.Children {
		if c.RunID == "" {
			continue
		}
		h, err := History(ctx, d.cfg.Temporal, c.WorkflowID, c.RunID)
		if err != nil {
			return res, err
		}
		res.Actions = res.Actions.Add(Count(h))
		res.Floor.Children = append(res.Floor.Children, Stages(h))
	}
	if run.State != ferry.RunCompleted {
		return res, fmt.Errorf("%w: evacuation %s ended %s: %s", errNotCompleted, started.ID, run.State, run.Message)
	}
	return res, nil
}

// FloorResult is one floor run's figures.
type FloorResult struct {
	Wall    time.Duration
	Actions Actions
	CPU     time.Duration
	PeakRSS int64
}

// FloorConfig says how to run the floor: the bench binary re-executed as
// its floor worker, on the same Temporal server.
type FloorConfig struct {
	BenchBin  string
	Temporal  client.Client
	HostPort  string
	Namespace string
	Workers   int
	Dir       string
	Env       []string // the same worker tuning as Ferry's workers
}

// RunFloor runs the floor workflow with in's fan-out on fresh floor worker
// processes and reads its figures the way Evacuate does.
func RunFloor(ctx context.Context, cfg FloorConfig, in FloorInput) (FloorResult, error) {
	queue := "bench-floor-" + randomHex(4)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return FloorResult{}, err
	}
	env := append(os.Environ(), "FERRY_TEMPORAL_ADDRESS="+cfg.HostPort, "FERRY_TEMPORAL_NAMESPACE="+cfg.Namespace, "FERRY_TASK_QUEUE="+queue)
	env = append(env, cfg.Env...)
	var procs []*Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for i := range max(cfg.Workers, 1) {
		p, err := StartProc(cfg.BenchBin, []string{"floor-worker"}, env, filepath.Join(cfg.Dir, fmt.Sprintf("floor-worker-%d.log", i+1)))
		if err != nil {
			return FloorResult{}, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.WaitLog(FloorWorkerReady, time.Minute); err != nil {
			return FloorResult{}, err
		}
	}
	sample := func() ([]ProcSample, error) {
		out := make([]ProcSample, len(procs))
		for i, p := range procs {
			s, err := ReadProc(p.Pid())
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	before, err := sample()
	if err != nil {
		return FloorResult{}, err
	}
	id := "bench-floor-" + randomHex(4)
	run, err := cfg.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, FloorWorkflowName, in)
	if err != nil {
		return FloorResult{}, fmt.Errorf("start the floor: %w", err)
	}
	if err := run.Get(ctx, nil); err != nil {
		return FloorResult{}, fmt.Errorf("floor %s: %w", id, err)
	}
	after, err := sample()
	if err != nil {
		return FloorResult{}, err
	}
	var res FloorResult
	for i := range after {
		res.CPU += after[i].CPU - before[i].CPU
		res.PeakRSS = max(res.PeakRSS, after[i].PeakRSS)
	}
	parent, err := History(ctx, cfg.Temporal, id, run.GetRunID())
	if err != nil {
		return res, err
	}
	s, e := Span(parent)
	res.Wall = time.Duration(e - s)
	res.Actions = Count(parent)
	for i := range in.Children {
		h, err := History(ctx, cfg.Temporal, fmt.Sprintf("%s-child-%03d", id, i), "")
		if err != nil {
			return res, err
		}
		res.Actions = res.Actions.Add(Count(h))
	}
	return res, nil
}

// FloorWorkerReady is what a floor worker prints once it polls.
const FloorWorkerReady = "floor worker polling"

// GroupResult is one planned failover of one group through the API.
type GroupResult struct {
	EndToEnd time.Duration // POST /v1/runs to the API showing it completed
	RTO      time.Duration // the run's own: its start to verified
	State    string
}

// Failover fails a group over through the API and polls the run every
// poll until it ends, as a client watching it would.
func (d *Deployment) Failover(ctx context.Context, group string, poll time.Duration) (GroupResult, error) {
	t0 := time.Now()
	var started StartRunResponse
	if err := d.API.Do(ctx, http.MethodPost, "/v1/runs", StartRunRequest{
		Kind: ferry.KindFailover, Group: group, Mode: ferry.ModePlanned, RequestedBy: "ferry-bench",
		Options: map[string]any{"skip_approval": true},
	}, &started); err != nil {
		return GroupResult{}, fmt.Errorf("start failover of %s: %w", group, err)
	}
	for {
		var run ferry.Run
		if err := d.API.Do(ctx, http.MethodGet, "/v1/runs/"+started.ID, nil, &run); err != nil {
			return GroupResult{}, err
		}
		if ferry.RunEnded(run.State) {
			res := GroupResult{EndToEnd: time.Since(t0), State: run.State}
			if run.RTOSeconds != nil {
				res.RTO = time.Duration(*run.RTOSeconds * float64(time.Second))
			}
			if run.State != ferry.RunCompleted {
				return res, fmt.Errorf("%w: failover of %s ended %s: %s", errNotCompleted, group, run.State, run.Message)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return GroupResult{}, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// DryRun asks the API for a planned failover's dry run of a group and
// returns how long the answer took.
func (d *Deployment) DryRun(ctx context.Context, group string) (time.Duration, error) {
	t0 := time.Now()
	var out map[string]any
	err := d.API.Do(ctx, http.MethodPost, "/v1/runs", StartRunRequest{
		Kind: ferry.KindFailover, Group: group, Mode: ferry.ModePlanned, DryRun: true, RequestedBy: "ferry-bench",
	}, &out)
	return time.Since(t0), err
}

// LiveRun starts a failover of group that stays live: the group's policy
// is changed to ask for approval, so the run waits for it. Abort it with
// AbortRun.
func (d *Deployment) LiveRun(ctx context.Context, group string) (string, error) {
	var g ferry.Group
	if err := d.API.Do(ctx, http.MethodGet, "/v1/groups/"+group, nil, &g); err != nil {
		return "", err
	}
	g.Approval.Required = true
	if err := d.API.Do(ctx, http.MethodPut, "/v1/groups/"+group, g, nil); err != nil {
		return "", err
	}
	var started StartRunResponse
	if err := d.API.Do(ctx, http.MethodPost, "/v1/runs", StartRunRequest{
		Kind: ferry.KindFailover, Group: group, Mode: ferry.ModePlanned, RequestedBy: "ferry-bench",
	}, &started); err != nil {
		return "", err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var run ferry.Run
		if err := d.API.Do(ctx, http.MethodGet, "/v1/runs/"+started.ID, nil, &run); err != nil {
			return "", err
		}
		if run.State == ferry.RunWaitingApproval {
			return started.ID, nil
		}
		if ferry.RunEnded(run.State) || time.Now().After(deadline) {
			return "", fmt.Errorf("live run %s of %s is %s, not waiting for approval: %s", started.ID, group, run.State, run.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// AbortRun aborts a run and waits for it to end.
func (d *Deployment) AbortRun(ctx context.Context, id string) error {
	if err := d.API.Do(ctx, http.MethodPost, "/v1/runs/"+id+"/abort", map[string]string{"comment": "benchmark over"}, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var run ferry.Run
		if err := d.API.Do(ctx, http.MethodGet, "/v1/runs/"+id, nil, &run); err != nil {
			return err
		}
		if ferry.RunEnded(run.State) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("run %s did not end after its abort", id)
}
