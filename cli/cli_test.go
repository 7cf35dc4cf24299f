package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
)

var (
	devOnce sync.Once
	dev     *devserver.Server
	devErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if dev != nil {
		_ = dev.Stop()
	}
	os.Exit(code)
}

func temporalClient(t *testing.T) client.Client {
	t.Helper()
	devOnce.Do(func() { dev, devErr = devserver.StartEphemeral(context.Background()) })
	require.NoError(t, devErr)
	return dev.Client()
}

// api serves the real API over a fresh database.
func api(t *testing.T, tc client.Client) (string, *store.Store) {
	t.Helper()
	st := storetest.New(t)
	srv := httptest.NewServer(server.New(server.Deps{
		Store:         st,
		Temporal:      tc,
		TaskQueue:     "cli-test",
		TemporalUIURL: "http://ui.example:8233",
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	tokens.Store(srv.URL, storetest.AdminToken(t, st))
	return srv.URL, st
}

// tokens holds the admin token of each API that api serves, by URL, for
// run to send.
var tokens sync.Map

func tokenOf(url string) string {
	tok, _ := tokens.Load(url)
	s, _ := tok.(string)
	return s
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, url, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli.CLI{
		API:          apiclient.New(url, nil, apiclient.WithToken(tokenOf(url))),
		Stdin:        strings.NewReader(stdin),
		Stdout:       &out,
		Stderr:       &errb,
		User:         "alice",
		PollInterval: 10 * time.Millisecond,
		Location:     time.UTC,
	}
	code := c.Run(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

const inventoryYAML = `
sites:
  - name: site-a
    description: Frankfurt
  - name: site-b
backends:
  # a and b replicate to each other: apply must cope with the cycle.
  - name: ceph-a
    site: site-a
    type: rbd
    members: [h1, h2]
    replication_targets: [{id: site-b, backend: ceph-b}]
  - name: ceph-b
    site: site-b
    type: rbd
    replication_targets: [{id: site-a, backend: ceph-a}]
groups:
  - name: shop
    primary_site: site-a
    dr_site: site-b
    rpo_seconds: 60
    volumes: [{name: db-root, backend: ceph-a}]
    tiers:
      - name: db
        servers: [{name: db-1, volumes: [db-root]}]
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestApply(t *testing.T) {
	url, st := api(t, nil)
	f := writeFile(t, "inv.yaml", inventoryYAML)

	r := run(t, url, "", "apply", "-f", f)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "site/site-a created\nsite/site-b created\nbackend/ceph-a created\nbackend/ceph-b created\ngroup/shop created\n", r.stdout)

	b, err := st.GetBackend(context.Background(), "ceph-b")
	require.NoError(t, err)
	require.Equal(t, []ferry.ReplicationTarget{{ID: "site-a", Backend: "ceph-a"}}, b.ReplicationTargets)
	g, err := st.GetGroup(context.Background(), "shop")
	require.NoError(t, err)
	require.Equal(t, ferry.ConsistencyCrash, g.Consistency, "defaults filled")

	r = run(t, url, "", "apply", "-f", f)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "site/site-a configured\nsite/site-b configured\nbackend/ceph-a configured\nbackend/ceph-b configured\ngroup/shop configured\n", r.stdout)

	// JSON, by extension and by content, and from stdin.
	js := `{"sites":[{"name":"site-c"}]}`
	r = run(t, url, "", "apply", "-f", writeFile(t, "inv.json", js))
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "site/site-c created\n", r.stdout)
	r = run(t, url, js, "apply", "-f", "-")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "site/site-c configured\n", r.stdout)

	r = run(t, url, "", "sites")
	require.Equal(t, 0, r.code)
	require.Equal(t, "NAME    DESCRIPTION\nsite-a  Frankfurt\nsite-b  -\nsite-c  -\n", r.stdout)
	r = run(t, url, "", "backends")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "ceph-a  site-a  rbd")
	r = run(t, url, "", "groups")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "shop  site-a   site-b  site-a  1m0s  1        1")
}

func TestApplyRefusesBadDocuments(t *testing.T) {
	url, st := api(t, nil)
	tests := []struct {
		name, file, content, want string
	}{
		{"invalid nested field", "x.yaml", strings.Replace(inventoryYAML, "- name: db\n", "- name: DB\n", 1), "groups[0].tiers[0].name"},
		{"unknown yaml field", "x.yaml", "sites:\n  - name: a\n    colour: red\n", "colour"},
		{"unknown json field", "x.json", `{"sites":[{"name":"a","colour":"red"}]}`, "colour"},
		{"json type", "x", `{"groups":[{"name":"g","rpo_seconds":"x"}]}`, "rpo_seconds"},
		{"yaml syntax", "x.yml", "sites: [\n", "yaml"},
		{"duplicate site", "x.yaml", "sites: [{name: a}, {name: a}]\n", "sites[1].name"},
		{"missing file", "", "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.yaml")
			if tt.file != "" {
				path = writeFile(t, tt.file, tt.content)
			}
			r := run(t, url, "", "apply", "-f", path)
			require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
			require.Contains(t, r.stderr, tt.want)
			require.Empty(t, r.stdout)
		})
	}
	sites, _, err := st.ListSites(context.Background(), ferry.Page{})
	require.NoError(t, err)
	require.Empty(t, sites, "nothing was applied")

	// A refusal by the server names the item and the field.
	r := run(t, url, "", "apply", "-f", writeFile(t, "b.yaml", "backends: [{name: b, site: nowhere, type: rbd}]\n"))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "backend/b")
	require.Contains(t, r.stderr, "site")
	require.Contains(t, r.stderr, "HTTP 422")
}

func TestUsageErrors(t *testing.T) {
	url := "http://127.0.0.1:1" // nothing is sent
	tests := []struct {
		args []string
		want string
	}{
		{nil, "verb is required"},
		{[]string{"explode"}, `unknown verb "explode"`},
		{[]string{"apply"}, "-f"},
		{[]string{"apply", "-f"}, "-f"},
		{[]string{"apply", "-f", "x", "extra"}, `"extra"`},
		{[]string{"failover"}, "GROUP"},
		{[]string{"failover", "shop", "--bogus"}, "-bogus"},
		{[]string{"failover", "shop", "--quiesce-policy", "pray"}, "--quiesce-policy"},
		{[]string{"failover", "a", "b"}, `"b"`},
		{[]string{"runs", "--limit", "0"}, "--limit"},
		{[]string{"runs", "--limit", "x"}, "-limit"},
		{[]string{"runs", "r1", "extra"}, `"extra"`},
		{[]string{"runs", "r1", "--group", "shop"}, "--group"},
		{[]string{"runs", "-o", "xml"}, "-o/--output"},
		{[]string{"groups", "--output=csv"}, "-o/--output"},
		{[]string{"status", "a", "b"}, `"b"`},
		{[]string{"completion", "tcsh"}, `"tcsh"`},
		{[]string{"completion"}, "SHELL"},
		{[]string{"watch"}, "RUN"},
		{[]string{"watch", ""}, "RUN"},
		{[]string{"approve"}, "RUN"},
		{[]string{"abort", "r1", "--comment"}, "-comment"},
		{[]string{"report", "r1", "--markdown=maybe"}, "-markdown"},
		{[]string{"groups", "x"}, `"x"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, url, "", tt.args...)
			require.Equal(t, 2, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stderr, tt.want)
			require.Empty(t, r.stdout)
		})
	}
	r := run(t, url, "", "failover", "-h")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "usage: ferry failover GROUP")
}

// fakeRuns serves GET /v1/runs/{id} from a script: each read answers the
// next run, and the last one forever.
func fakeRuns(t *testing.T, script ...ferry.Run) string {
	t.Helper()
	var mu sync.Mutex
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/runs/"+script[0].ID {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"type":"about:blank","title":"Not found","status":404,"detail":"run not found"}`)
			return
		}
		mu.Lock()
		run := script[min(i, len(script)-1)]
		i++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(run)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func at(s string) *time.Time {
	t, err := time.Parse(time.TimeOnly, s)
	if err != nil {
		panic(err)
	}
	t = time.Date(2025, 3, 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	return &t
}

func step(name, state string, started, ended string) ferry.Step {
	s := ferry.Step{Name: name, State: state, Attempts: 1}
	if started != "" {
		s.Started = at(started)
	}
	if ended != "" {
		s.Ended = at(ended)
	}
	return s
}

// script is a failover as watch sees it: waiting for approval, running,
// then ending as final.
func script(final string) []ferry.Run {
	base := ferry.Run{ID: "r1", Kind: "failover", Group: "shop", Site: "site-b", Mode: "planned"}
	r1 := base
	r1.State = ferry.RunWaitingApproval
	r1.Steps = []ferry.Step{step("precheck", "completed", "12:00:00", "12:00:01"), step("approval", "running", "12:00:01", ""), step("promote", "pending", "", "")}
	r2 := base
	r2.State = ferry.RunRunning
	r2.Steps = []ferry.Step{step("precheck", "completed", "12:00:00", "12:00:01"), step("approval", "completed", "12:00:01", "12:00:05"), step("promote", "running", "12:00:05", "")}
	r3 := r2
	r3.State = final
	rpo, rto, lost := 2.5, 41.0, int64(0)
	r3.RPOSeconds, r3.RTOSeconds, r3.WritesLost = &rpo, &rto, &lost
	last := step("promote", "completed", "12:00:05", "12:00:41")
	if final != ferry.RunCompleted {
		last = step("promote", "compensated", "12:00:05", "12:00:09")
		last.Error = "replica out of sync"
		r3.WritesLost = nil
	}
	r3.Steps = []ferry.Step{r2.Steps[0], r2.Steps[1], last}
	return []ferry.Run{r1, r1, r2, r3}
}

func TestWatchPlain(t *testing.T) {
	r := run(t, fakeRuns(t, script(ferry.RunCompleted)...), "", "watch", "r1")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, `12:00:01 precheck  completed
12:00:01 approval  running
run is waiting for approval: ferry approve r1 (or ferry abort r1)
12:00:05 approval  completed
12:00:05 promote   running
12:00:41 promote   completed
run r1 completed: RPO 2.5s, RTO 41.0s, writes lost 0
`, r.stdout)

	r = run(t, fakeRuns(t, script(ferry.RunRolledBack)...), "", "watch", "r1")
	require.Equal(t, 1, r.code, "a run that did not complete exits 1")
	require.Contains(t, r.stdout, "12:00:09 promote   compensated: replica out of sync\n")
	require.True(t, strings.HasSuffix(r.stdout, "run r1 rolled_back: RPO 2.5s, RTO 41.0s, writes lost -\n"), r.stdout)

	r = run(t, fakeRuns(t, script(ferry.RunCompleted)...), "", "watch", "nope")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "run not found")
}

func TestWatchPausedHints(t *testing.T) {
	failed := step("boot-tier-db", "failed", "12:00:05", "12:00:07")
	failed.Error = "server db-1 unhealthy"
	paused := ferry.Run{ID: "r2", Kind: "failover", Group: "shop", State: ferry.RunPaused, Steps: []ferry.Step{failed}}
	byOperator := paused
	byOperator.Steps = []ferry.Step{step("boot-tier-db", "running", "12:00:05", "")}
	byOperator.Events = []ferry.Event{{Action: "pause", By: "bob"}}
	aborted := paused
	aborted.State = ferry.RunAborted
	r := run(t, fakeRuns(t, paused, byOperator, aborted), "", "watch", "r2")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "run is paused at step boot-tier-db: ferry retry r2, ferry skip r2 or ferry abort r2\n")
	require.Contains(t, r.stdout, "run was paused by bob: ferry resume r2\n")
	require.Contains(t, r.stdout, "12:00:07 boot-tier-db  failed: server db-1 unhealthy\n")
}

func TestWatchTerminal(t *testing.T) {
	var out, errb bytes.Buffer
	tty := true
	c := &cli.CLI{
		API: apiclient.New(fakeRuns(t, script(ferry.RunCompleted)...), nil), Stdin: strings.NewReader(""),
		Stdout: &out, Stderr: &errb, PollInterval: time.Millisecond, TTY: &tty, Location: time.UTC, NoColor: true,
	}
	require.Equal(t, 0, c.Run(context.Background(), []string{"watch", "r1"}), errb.String())
	s := out.String()
	require.Contains(t, s, "Run r1: failover of group shop to site site-b (planned): WAITING_APPROVAL")
	require.Contains(t, s, "\x1b[", "redraws in place")
	require.Contains(t, s, "\x1b[J")
	last := s[strings.LastIndex(s, "\x1b[J")+len("\x1b[J"):]
	require.Contains(t, last, "Run r1: failover of group shop to site site-b (planned): COMPLETED")
	require.Contains(t, last, "STEP")
	require.Regexp(t, `promote\s+completed\s+12:00:05\s+36s\s+1`, last)
	require.Contains(t, last, "run r1 completed: RPO 2.5s, RTO 41.0s, writes lost 0")
	require.NotContains(t, last, "waiting for approval")
}

func TestFailoverRunsAndSteer(t *testing.T) {
	tc := temporalClient(t)
	url, st := api(t, tc)
	shop := "shop-" + time.Now().Format("150405.000000")
	inv := strings.ReplaceAll(inventoryYAML, "name: shop", "name: "+shop)
	require.Equal(t, 0, run(t, url, "", "apply", "-f", writeFile(t, "inv.yaml", inv)).code)

	// Declining the prompt starts nothing.
	r := run(t, url, "n\n", "failover", shop)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "Fail over group "+shop+" to site site-b (planned)? [y/N] ")
	require.Contains(t, r.stdout, "nothing was started")
	runs, _, err := st.ListRuns(context.Background(), ferry.RunFilter{})
	require.NoError(t, err)
	require.Empty(t, runs)

	// No worker runs here: the run stays running; --detach returns.
	r = run(t, url, "yes\n", "failover", shop, "--unplanned", "--detach")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "(unplanned)? [y/N] ")
	runs, _, err = st.ListRuns(context.Background(), ferry.RunFilter{})
	require.NoError(t, err)
	require.Len(t, runs, 1)
	id := runs[0].ID
	require.Equal(t, ferry.ModeUnplanned, runs[0].Mode)
	require.Equal(t, "alice", runs[0].RequestedBy)
	require.Contains(t, r.stdout, "Run "+id+" started: failover of group "+shop+" to site site-b (unplanned)\n")
	require.Contains(t, r.stdout, "Temporal UI: http://ui.example:8233/namespaces/default/workflows/ferry-group-"+shop+"/"+id+"/history\n")

	// A second failover is refused, naming the running run.
	r = run(t, url, "", "failover", shop, "--yes")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, id)
	require.Contains(t, r.stderr, "ferry watch "+id)

	r = run(t, url, "", "runs", "--group", shop)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^ID\s+KIND\s+GROUP\s+MODE\s+STATE\s+CREATED\s+RTO$`, lines[0])
	require.Regexp(t, `^`+id+`\s+failover\s+`+shop+`\s+unplanned\s+running\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-$`, lines[1])

	r = run(t, url, "", "runs", "--state", "completed")
	require.Equal(t, 0, r.code)
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), "only the header")

	// The run ends (terminated): steering is refused, watch exits 1.
	require.NoError(t, tc.TerminateWorkflow(context.Background(), "ferry-group-"+shop, id, "test"))
	r = run(t, url, "", "approve", id, "--comment", "go")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "run has ended")
	r = run(t, url, "", "watch", id)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "run "+id+" aborted")

	r = run(t, url, "", "report", id, "--markdown")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "# Ferry failover of group "+shop)
	r = run(t, url, "", "report", id, "--format", "json")
	require.Equal(t, 0, r.code)
	var rep ferry.Run
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Equal(t, id, rep.ID)

	r = run(t, url, "", "approve", "no-such-run")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "HTTP 404")
}
