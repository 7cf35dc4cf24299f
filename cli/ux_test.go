package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/store"
)

// decodeAs reads -o json output into T.
func decodeAs[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v), out)
	return v
}

// yamlAs reads -o yaml output into T, through JSON (the API's types have
// JSON tags).
func yamlAs[T any](t *testing.T, out string) T {
	t.Helper()
	var doc any
	require.NoError(t, yaml.Unmarshal([]byte(out), &doc), out)
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	return decodeAs[T](t, string(b))
}

// both checks that -o json and -o yaml of a verb print the same objects,
// and returns them.
func both[T any](t *testing.T, url string, args ...string) T {
	t.Helper()
	r := run(t, url, "", append(args, "-o", "json")...)
	require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
	fromJSON := decodeAs[T](t, r.stdout)
	r = run(t, url, "", append(args, "--output=yaml")...)
	require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
	if y := strings.TrimSpace(r.stdout); y != "[]" {
		require.False(t, strings.HasPrefix(y, "{") || strings.HasPrefix(y, "["), "block style YAML: %s", r.stdout)
	}
	require.Equal(t, fromJSON, yamlAs[T](t, r.stdout), "%v: yaml and json agree", args)
	return fromJSON
}

func TestReadVerbsPrintTheAPIsObjects(t *testing.T) {
	tc := temporalClient(t)
	url, _ := api(t, tc)
	shop := "shop-" + time.Now().Format("150405.000000")
	inv := strings.ReplaceAll(inventoryYAML, "name: shop", "name: "+shop)
	require.Equal(t, 0, run(t, url, "", "apply", "-f", writeFile(t, "inv.yaml", inv)).code)
	ctx := context.Background()
	c := apiclient.New(url, nil, apiclient.WithToken(tokenOf(url)))

	groups, err := c.ListGroups(ctx, apiclient.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, groups.Items, both[[]ferry.Group](t, url, "groups"))
	sites, err := c.ListSites(ctx, apiclient.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, sites.Items, both[[]ferry.Site](t, url, "sites"))
	backends, err := c.ListBackends(ctx, apiclient.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, backends.Items, both[[]ferry.Backend](t, url, "backends"))
	require.Equal(t, []apiclient.Schedule{}, both[[]apiclient.Schedule](t, url, "schedules"))
	tokens, err := c.ListTokens(ctx, apiclient.ListOptions{})
	require.NoError(t, err)
	gotTokens := both[[]ferry.Token](t, url, "token", "list")
	require.Len(t, gotTokens, len(tokens.Items))
	require.Equal(t, tokens.Items[0].ID, gotTokens[0].ID)
	audit := both[[]ferry.AuditEntry](t, url, "audit", "--limit", "5")
	require.NotEmpty(t, audit)
	rep := both[apiclient.Replication](t, url, "replication", "show", shop)
	require.Equal(t, shop, rep.Group)

	// A run (no worker here: it stays running), listed and shown.
	started, err := c.StartRun(ctx, apiclient.StartRunRequest{Kind: ferry.KindDrill, Group: shop, RequestedBy: "test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tc.TerminateWorkflow(context.Background(), started.WorkflowID, started.ID, "test ended") })
	runs := both[[]ferry.Run](t, url, "runs", "--group", shop)
	require.Len(t, runs, 1)
	require.Equal(t, started.ID, runs[0].ID)
	one := both[ferry.Run](t, url, "runs", started.ID)
	require.Equal(t, started.ID, one.ID)
	require.Equal(t, ferry.KindDrill, one.Kind)

	// The table of one run is watch's frame, once.
	r := run(t, url, "", "runs", started.ID)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Run "+started.ID+": drill of group "+shop)
	require.Regexp(t, `(?m)^\s+STEP\s+STATE\s+STARTED\s+DURATION\s+ATTEMPTS\s+ERROR/NOTE$`, r.stdout)
	require.NotContains(t, r.stdout, "\x1b[", "no escape codes off a terminal")

	// An unknown format is a usage error naming the flag, on every read verb.
	for _, args := range [][]string{{"groups"}, {"sites"}, {"backends"}, {"runs"}, {"runs", started.ID}, {"schedules"},
		{"token", "list"}, {"audit"}, {"status"}, {"replication", "show", shop}} {
		r := run(t, url, "", append(args, "-o", "xml")...)
		require.Equal(t, cli.ExitUsage, r.code, "%v", args)
		require.Contains(t, r.stderr, `flag -o/--output must be table, json, yaml, not "xml"`, "%v", args)
		require.Empty(t, r.stdout)
	}
}

// putReplicas records what the replication monitor would have observed of
// a group's replicas: the DR copies lag by lag seconds.
func putReplicas(t *testing.T, st *store.Store, group string, lag float64, state string) {
	t.Helper()
	now := time.Now().UTC()
	require.NoError(t, st.PutReplicas(context.Background(), group, []ferry.Replica{
		{Group: group, Resource: "db-root", Kind: "volume", Site: "site-a", Backend: "ceph-a", State: ferry.ReplicaActive, Seq: 10, Observed: now},
		{Group: group, Resource: "db-root", Kind: "volume", Site: "site-b", Backend: "ceph-b", State: state, Seq: 7, LagSecs: lag, Observed: now},
	}))
}

func TestStatusJudgesLagAgainstTheRPO(t *testing.T) {
	tc := temporalClient(t)
	url, st := api(t, tc)
	shop := "shop-" + time.Now().Format("150405.000000")
	inv := strings.ReplaceAll(inventoryYAML, "name: shop", "name: "+shop)
	require.Equal(t, 0, run(t, url, "", "apply", "-f", writeFile(t, "inv.yaml", inv)).code)
	// A second group, never observed.
	crm := strings.ReplaceAll(strings.ReplaceAll(inventoryYAML, "name: shop", "name: crm-"+shop), "rpo_seconds: 60", "rpo_seconds: 30")
	require.Equal(t, 0, run(t, url, "", "apply", "-f", writeFile(t, "crm.yaml", crm)).code)

	// Never drilled, nothing observed: UNKNOWN, and that is not a breach.
	r := run(t, url, "", "status")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Regexp(t, `(?m)^GROUP\s+PROJECT\s+ACTIVE\s+REPLICAS\s+LAG\s+RPO\s+VERDICT\s+LAST DRILL\s+RUNNING$`, r.stdout)
	require.Regexp(t, `(?m)^`+shop+`\s+-\s+site-a\s+-\s+-\s+1m0s\s+UNKNOWN\s+never\s+-$`, r.stdout)

	// The monitor's observations: within twice the RPO is OK (a lag of
	// 100s against 60s is late but not yet a violation, as the monitor
	// judges), past 2x WARN, past 3x or a replica in error CRIT.
	for _, tt := range []struct {
		lag     float64
		state   string
		verdict string
		code    int
	}{
		{30, ferry.ReplicaInSync, cli.VerdictOK, cli.ExitOK},
		{100, ferry.ReplicaOutOfSync, cli.VerdictOK, cli.ExitOK},
		{150, ferry.ReplicaOutOfSync, cli.VerdictWarn, cli.ExitRPO},
		{200, ferry.ReplicaOutOfSync, cli.VerdictCrit, cli.ExitRPO},
		{0, ferry.ReplicaError, cli.VerdictCrit, cli.ExitRPO},
	} {
		putReplicas(t, st, shop, tt.lag, tt.state)
		r := run(t, url, "", "status")
		require.Equal(t, tt.code, r.code, "lag %v %s: %s %s", tt.lag, tt.state, r.stdout, r.stderr)
		lag := (time.Duration(tt.lag) * time.Second).String()
		require.Regexp(t, `(?m)^`+shop+`\s+-\s+site-a\s+site-a active×1 site-b `+tt.state+`×1\s+`+lag+`\s+1m0s\s+`+tt.verdict+`\s`, r.stdout)
		require.Regexp(t, `(?m)^crm-`+shop+`\s+.*\s+30s\s+UNKNOWN\s`, r.stdout)
	}

	// One group by name; json carries the replicas as the API has them.
	putReplicas(t, st, shop, 150, ferry.ReplicaOutOfSync)
	r = run(t, url, "", "status", shop, "-o", "json")
	require.Equal(t, cli.ExitRPO, r.code, "-o json exits 3 too")
	rows := decodeAs[[]cli.GroupStatus](t, r.stdout)
	require.Len(t, rows, 1)
	require.Equal(t, shop, rows[0].Group)
	require.Equal(t, cli.VerdictWarn, rows[0].Verdict)
	require.Equal(t, 150.0, *rows[0].LagSeconds)
	require.Equal(t, 60, rows[0].RPOSeconds)
	require.Len(t, rows[0].Replicas, 2)
	require.False(t, rows[0].Replicas[1].RPOCompliant)
	require.Nil(t, rows[0].LastDrill)
	require.Empty(t, rows[0].Running)

	// A drill (no worker: it stays running) is the last drill and runs.
	putReplicas(t, st, shop, 10, ferry.ReplicaInSync)
	c := apiclient.New(url, nil, apiclient.WithToken(tokenOf(url)))
	started, err := c.StartRun(context.Background(), apiclient.StartRunRequest{Kind: ferry.KindDrill, Group: shop, RequestedBy: "test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tc.TerminateWorkflow(context.Background(), started.WorkflowID, started.ID, "test ended") })
	r = run(t, url, "", "status", shop)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Regexp(t, `\s+OK\s+\d{4}-\d\d-\d\d \d\d:\d\d running\s+drill `+started.ID+` \(running\)$`, strings.TrimSpace(r.stdout))
	rows = both[[]cli.GroupStatus](t, url, "status", shop)
	require.Equal(t, started.ID, rows[0].LastDrill.ID)
	require.Equal(t, []string{started.ID}, []string{rows[0].Running[0].ID})

	// On a terminal the verdict is coloured; NO_COLOR turns that off.
	putReplicas(t, st, shop, 500, ferry.ReplicaOutOfSync)
	t.Setenv("NO_COLOR", "")
	var out bytes.Buffer
	tty := true
	cc := &cli.CLI{API: c, Stdout: &out, Stderr: &out, TTY: &tty, Location: time.UTC}
	require.Equal(t, cli.ExitRPO, cc.Run(context.Background(), []string{"status", shop}))
	require.Contains(t, out.String(), "\x1b[1;31mCRIT\x1b[0m")
	out.Reset()
	t.Setenv("NO_COLOR", "1")
	require.Equal(t, cli.ExitRPO, cc.Run(context.Background(), []string{"status", shop}))
	require.NotContains(t, out.String(), "\x1b[")
	require.Contains(t, out.String(), "CRIT")
}

func TestEveryVerbHelpsAndRefusesBadFlags(t *testing.T) {
	url := "http://127.0.0.1:1" // nothing is sent
	for _, verb := range cli.Verbs {
		args := []string{verb}
		if verb == "token" {
			args = append(args, "create")
		}
		r := run(t, url, "", append(args, "--help")...)
		require.Equal(t, cli.ExitOK, r.code, "%s --help: %s", verb, r.stderr)
		require.True(t, strings.HasPrefix(r.stdout, "usage: ferry "+verb), "%s --help: %s", verb, r.stdout)
		require.Empty(t, r.stderr)

		r = run(t, url, "", append(args, "--no-such-flag")...)
		require.Equal(t, cli.ExitUsage, r.code, "%s --no-such-flag: %s", verb, r.stderr)
		require.Contains(t, r.stderr, "-no-such-flag", verb)
		require.LessOrEqual(t, strings.Count(r.stderr, "\n"), 4, "a short message: %s", r.stderr)
		require.Empty(t, r.stdout)
	}
	// Help lists the flags with what they do.
	r := run(t, url, "", "runs", "-h")
	require.Contains(t, r.stdout, "\nflags:\n")
	require.Regexp(t, `(?m)^  -o, --output string\s+output format: table, json, yaml \(default table\)$`, r.stdout)
	require.Regexp(t, `(?m)^  --limit int\s+at most this many runs \(default 50\)$`, r.stdout)
}

func TestCompletionScripts(t *testing.T) {
	url := "http://127.0.0.1:1"
	scripts := map[string]string{}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := run(t, url, "", "completion", shell)
		require.Equal(t, cli.ExitOK, r.code, r.stderr)
		scripts[shell] = r.stdout
		for _, verb := range cli.Verbs {
			require.Contains(t, r.stdout, verb, "%s completion names %s", shell, verb)
		}
	}
	require.Contains(t, scripts["fish"], "complete -c ferry -n '__fish_seen_subcommand_from failover' -l quiesce-policy -x -a 'abort continue'")
	require.Contains(t, scripts["zsh"], "compdef _ferry ferry")

	// The scripts parse.
	dir := t.TempDir()
	for shell, script := range scripts {
		p := filepath.Join(dir, "ferry."+shell)
		require.NoError(t, os.WriteFile(p, []byte(script), 0o600))
		if path, err := exec.LookPath(shell); err == nil {
			out, err := exec.Command(path, "-n", p).CombinedOutput()
			require.NoError(t, err, "%s -n: %s", shell, out)
		} else {
			require.NotEqual(t, "bash", shell, "bash is needed to check the bash script")
		}
	}

	// And bash completes with them.
	complete := func(words ...string) []string {
		t.Helper()
		script := "source " + filepath.Join(dir, "ferry.bash") + "\n" +
			"COMP_WORDS=(" + quoteAll(words) + "); COMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n" +
			"_ferry; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.Fields(string(out))
	}
	require.ElementsMatch(t, []string{"failback", "failover"}, complete("ferry", "fail"))
	require.Contains(t, complete("ferry", ""), "status")
	require.Contains(t, complete("ferry", ""), "completion")
	require.Equal(t, []string{"--quiesce-policy"}, complete("ferry", "failover", "shop", "--qui"))
	require.ElementsMatch(t, []string{"abort", "continue"}, complete("ferry", "failover", "shop", "--quiesce-policy", ""))
	require.Equal(t, []string{"json"}, complete("ferry", "groups", "-o", "j"))
	require.Equal(t, []string{"yaml"}, complete("ferry", "--api-url", "http://x", "status", "--output", "y"))
	require.ElementsMatch(t, []string{"create", "list", "revoke", "bootstrap"}, complete("ferry", "token", ""))
	require.Equal(t, []string{"bash"}, complete("ferry", "completion", "b"))
	require.Contains(t, complete("ferry", "drill", "--"), "--hold")
	require.NotContains(t, complete("ferry", "failback", "--"), "--hold")
}

func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, " ")
}
