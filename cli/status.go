package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// Verdicts of `ferry status`, as the replication monitor levels a replica
// (workflows/monitor.go): past twice the RPO is a warning, past three
// times or a replica in error is critical.
const (
	VerdictOK      = "OK"
	VerdictWarn    = "WARN"
	VerdictCrit    = "CRIT"
	VerdictUnknown = "UNKNOWN" // no replica observed yet
)

// GroupStatus is one group's replication health: a row of `ferry status`
// and an item of its -o json|yaml.
type GroupStatus struct {
	Group      string `json:"group"`
	Project    string `json:"project,omitempty"`
	ActiveSite string `json:"active_site"`
	RPOSeconds int    `json:"rpo_seconds"`
	// LagSeconds is the largest lag of a replica that is not the active
	// one; nil when none was observed.
	LagSeconds *float64 `json:"lag_seconds"`
	Verdict    string   `json:"verdict"`
	// Replicas are the group's replicas as GET /v1/groups/{name}/replication
	// answers them.
	Replicas  []apiclient.ReplicaStatus `json:"replicas"`
	LastDrill *RunSummary               `json:"last_drill"`
	Running   []RunSummary              `json:"running"`
}

// RunSummary names a run in a status.
type RunSummary struct {
	ID      string     `json:"id"`
	Kind    string     `json:"kind"`
	State   string     `json:"state"`
	Created time.Time  `json:"created"`
	Ended   *time.Time `json:"ended,omitempty"`
}

func summarize(r ferry.Run) RunSummary {
	return RunSummary{ID: r.ID, Kind: r.Kind, State: r.State, Created: r.Created, Ended: r.Ended}
}

// verdict judges a group's replicas against its RPO.
func verdict(rpo int, reps []apiclient.ReplicaStatus) (string, *float64) {
	if len(reps) == 0 {
		return VerdictUnknown, nil
	}
	worst := 0.0
	inError := false
	for _, r := range reps {
		if r.State == ferry.ReplicaError {
			inError = true
		}
		if r.State != ferry.ReplicaActive {
			worst = max(worst, r.LagSecs)
		}
	}
	limit := float64(rpo)
	switch {
	case inError, limit > 0 && worst > 3*limit:
		return VerdictCrit, &worst
	case limit > 0 && worst > 2*limit:
		return VerdictWarn, &worst
	}
	return VerdictOK, &worst
}

func verdictColor(v string) string {
	switch v {
	case VerdictOK:
		return green
	case VerdictWarn:
		return yellow
	case VerdictCrit:
		return bold + ";" + red
	}
	return faint
}

// status prints every group's replication health (or one group's) and
// exits ExitRPO when a group is WARN or CRIT: past twice its RPO, or three
// times / a replica in error.
func (c *CLI) status(ctx context.Context, args []string) error {
	fs := flags("status")
	out := c.outputFlag(fs)
	pos, err := parseUpTo(fs, args, "GROUP")
	if err != nil {
		return err
	}
	if err := checkOutput("status", *out); err != nil {
		return err
	}
	var groups []ferry.Group
	if len(pos) == 1 {
		g, err := c.API.GetGroup(ctx, pos[0])
		if err != nil {
			return err
		}
		groups = []ferry.Group{g}
	} else if groups, err = all(ctx, c.API.ListGroups); err != nil {
		return err
	}
	rows, err := c.groupStatuses(ctx, groups)
	if err != nil {
		return err
	}

	if *out != OutputTable {
		err = encode(c.Stdout, *out, rows)
	} else {
		err = c.statusTable(rows)
	}
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.Verdict == VerdictWarn || r.Verdict == VerdictCrit {
			return &exitError{ExitRPO}
		}
	}
	return nil
}

// groupStatuses reads what status shows of each group: its replicas (a
// few groups at a time), its last drill and its unfinished runs.
func (c *CLI) groupStatuses(ctx context.Context, groups []ferry.Group) ([]GroupStatus, error) {
	rows := make([]GroupStatus, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, g := range groups {
		rows[i] = GroupStatus{Group: g.Name, Project: g.Project, ActiveSite: activeSite(g), RPOSeconds: g.RPOSeconds,
			Replicas: []apiclient.ReplicaStatus{}, Running: []RunSummary{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep, err := c.API.GroupReplication(ctx, g.Name)
			if err != nil {
				errs[i] = fmt.Errorf("group %s: %w", g.Name, err)
				return
			}
			if rep.Items != nil {
				rows[i].Replicas = rep.Items
			}
			rows[i].Verdict, rows[i].LagSeconds = verdict(g.RPOSeconds, rows[i].Replicas)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}

	index := map[string]int{}
	for i, g := range groups {
		index[g.Name] = i
	}
	// The newest drill of each group: one page of drills, newest first,
	// then a read per group the page did not reach.
	drills, err := c.API.ListRuns(ctx, apiclient.RunFilter{Kind: ferry.KindDrill, ListOptions: apiclient.ListOptions{Limit: 1000}})
	if err != nil {
		return nil, err
	}
	for _, r := range drills.Items {
		if i, ok := index[r.Group]; ok && rows[i].LastDrill == nil {
			s := summarize(r)
			rows[i].LastDrill = &s
		}
	}
	if drills.NextPageToken != "" {
		for i := range rows {
			if rows[i].LastDrill != nil {
				continue
			}
			p, err := c.API.ListRuns(ctx, apiclient.RunFilter{Kind: ferry.KindDrill, Group: rows[i].Group, ListOptions: apiclient.ListOptions{Limit: 1}})
			if err != nil {
				return nil, err
			}
			if len(p.Items) > 0 {
				s := summarize(p.Items[0])
				rows[i].LastDrill = &s
			}
		}
	}
	// Unfinished runs, by their live state.
	for _, state := range []string{ferry.RunRunning, ferry.RunWaitingApproval, ferry.RunPaused} {
		p, err := c.API.ListRuns(ctx, apiclient.RunFilter{State: state, ListOptions: apiclient.ListOptions{Limit: 1000}})
		if err != nil {
			return nil, err
		}
		for _, r := range p.Items {
			if i, ok := index[r.Group]; ok {
				rows[i].Running = append(rows[i].Running, summarize(r))
			}
		}
	}
	return rows, nil
}

func (c *CLI) statusTable(rows []GroupStatus) error {
	color := c.colorOn()
	var t table
	t.rowText("GROUP", "PROJECT", "ACTIVE", "REPLICAS", "LAG", "RPO", "VERDICT", "LAST DRILL", "RUNNING")
	for _, r := range rows {
		lag := "-"
		if r.LagSeconds != nil {
			lag = seconds(*r.LagSeconds)
		}
		drill, drillColor := "never", yellow
		if d := r.LastDrill; d != nil {
			drill, drillColor = d.Created.In(c.loc()).Format("2006-01-02 15:04")+" "+d.State, runColor(d.State)
		}
		running := make([]string, 0, len(r.Running))
		for _, run := range r.Running {
			running = append(running, fmt.Sprintf("%s %s (%s)", run.Kind, run.ID, run.State))
		}
		t.row(cell{text: r.Group}, cell{text: dash(r.Project)}, cell{text: r.ActiveSite},
			cell{text: dash(replicaSummary(r.Replicas))}, cell{text: lag}, cell{text: seconds(float64(r.RPOSeconds))},
			cell{r.Verdict, verdictColor(r.Verdict)}, cell{drill, drillColor}, cell{text: dash(strings.Join(running, ", "))})
	}
	return t.write(c.Stdout, color)
}

// replicaSummary counts a group's replicas by site and state:
// "site-a active×3 site-b in_sync×2 site-b out_of_sync×1".
func replicaSummary(reps []apiclient.ReplicaStatus) string {
	counts := map[string]int{}
	for _, r := range reps {
		counts[r.Site+" "+r.State]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, counts[k])
	}
	return strings.Join(parts, " ")
}

// seconds prints a number of seconds as a duration (95 → 1m35s).
func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
