package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	temporaltest "go.temporal.io/sdk/testsuite"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/codec"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/store/storetest"
)

// secretWord is a fresh secret that names what it is, in letters and digits
// only, so that no escaping (URL, JSON, shell) changes it where it might
// leak.
func secretWord(t *testing.T, what string) string {
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return what + "S3CRET" + hex.EncodeToString(b[:])
}

// hookServer is the groups' webhook: it answers 200 only to the URL with
// the secret path and token, and counts the calls by hook.
type hookServer struct {
	*httptest.Server
	path, token string
	mu          sync.Mutex
	calls       map[string]int
	refused     int
}

func startHookServer(t *testing.T, path, token string) *hookServer {
	h := &hookServer{path: path, token: token, calls: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.URL.Path != "/hook/"+h.path || r.URL.Query().Get("token") != h.token {
			h.refused++
			http.Error(w, "wrong hook URL", http.StatusForbidden)
			return
		}
		var runCtx map[string]string
		if err := json.NewDecoder(r.Body).Decode(&runCtx); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.calls[runCtx["hook"]]++
		_, _ = io.WriteString(w, "ok\n")
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) count(hook string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[hook]
}

// secretSystem is a Ferry deployment of separate processes (as the e2e
// suite's) with secrets in play everywhere a secret can be: webhook URLs
// (path and token), a command hook's arguments, the database password, the
// admin API token and, when sealed, the payload key. Every process logs at
// debug level into the system's log directory, the Temporal dev server
// too.
type secretSystem struct {
	*system
	sealed   bool
	temporal *temporaltest.DevServer
	raw      client.Client // without the codec: what Temporal stores
	hooks    *hookServer
	secrets  map[string][]byte
	// canary is what the CLI sends as the requester of every run: it
	// travels in workflow inputs only, so the raw histories hold it in
	// the clear exactly when payloads are not sealed.
	canary string
	// cliOut collects what every CLI verb printed.
	cliOut strings.Builder
}

func startSecretSystem(t *testing.T, sealed bool) *secretSystem {
	t.Helper()
	dir := t.TempDir()
	ss := &secretSystem{sealed: sealed, secrets: map[string][]byte{}, canary: secretWord(t, "requester")[:30]}
	for _, name := range []string{"hook-path", "hook-token", "command-arg", "db-password"} {
		ss.secrets[name] = []byte(secretWord(t, strings.ReplaceAll(name, "-", "")))
	}
	// Runs last, once every process below has stopped and flushed: the
	// logs of the whole life of the system, shutdown included.
	t.Cleanup(func() {
		sizes := scanLogs(t, dir, ss.secrets)
		t.Logf("logs scanned for %d secrets: %v", len(ss.secrets), sizes)
		for _, name := range []string{"temporal.log", "sim.log", "server.log", "worker.log"} {
			if sizes[name] == 0 {
				t.Errorf("%s is missing or empty: the scan read nothing of it", name)
			}
		}
	})

	bin := filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	build.Dir = repoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build ferry: %s", out)

	tlogFile, err := os.Create(filepath.Join(dir, "temporal.log"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ss.temporal, err = temporaltest.StartDevServer(ctx, temporaltest.DevServerOptions{
		ExistingPath: devserver.BinaryPath(),
		LogLevel:     "info",
		ExtraArgs:    devserver.SearchAttributeArgs(),
		Stdout:       tlogFile, Stderr: tlogFile,
		ClientOptions: &client.Options{Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = ss.temporal.Stop()
		tlogFile.Close()
	})
	ss.raw = ss.temporal.Client()

	// Trust authentication ignores the password; it is in the URL every
	// process is given all the same.
	db, err := url.Parse(storetest.URL(t))
	require.NoError(t, err)
	db.User = url.UserPassword(db.User.Username(), string(ss.secrets["db-password"]))
	apiAddr, simAddr := freeAddr(t), freeAddr(t)
	s := &system{t: t, bin: bin, logs: dir, apiURL: "http://" + apiAddr, simURL: "http://" + simAddr, dbURL: db.String()}
	s.env = append(os.Environ(),
		"FERRY_TEMPORAL_ADDRESS="+ss.temporal.FrontendHostPort(),
		"FERRY_DATABASE_URL="+s.dbURL,
		"FERRY_HTTP_ADDR="+apiAddr,
		"FERRY_API_URL="+s.apiURL,
		"FERRY_SIM_ADDR="+simAddr,
		"FERRY_SIM_URL="+s.simURL,
		"FERRY_TASK_QUEUE=secrets-"+filepath.Base(dir),
		"FERRY_LOG_LEVEL=debug",
		"FERRY_USER="+ss.canary,
	)
	if sealed {
		line, err := codec.NewKey("secrets-test")
		require.NoError(t, err)
		keyFile := filepath.Join(dir, "payload.keys")
		require.NoError(t, os.WriteFile(keyFile, []byte(line+"\n"), 0o600))
		_, b64, _ := strings.Cut(line, ":")
		key, err := base64.StdEncoding.DecodeString(b64)
		require.NoError(t, err)
		ss.secrets["payload-key"] = []byte(b64)
		ss.secrets["payload-key-raw"] = key
		s.env = append(s.env, "FERRY_PAYLOAD_KEYS_FILE="+keyFile)
	}
	s.token = bootstrapToken(t, bin, s.env)
	ss.secrets["admin-token"] = []byte(s.token)
	s.env = append(s.env, "FERRY_TOKEN="+s.token)
	s.api = apiclient.New(s.apiURL, &http.Client{Timeout: 30 * time.Second}, apiclient.WithToken(s.token))
	s.sim = sim.NewClient(s.simURL, &http.Client{Timeout: 30 * time.Second})
	ss.system = s

	s.spawn("sim", "--demo", "--boot-time", "100ms", "--lag", "0s", "--workload-interval", "0s")
	s.spawn("server")
	s.spawn("worker")
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return s.api.Ready(ctx) == nil
	}, time.Minute, 100*time.Millisecond, "ferry server never became ready; logs in %s", dir)

	ss.hooks = startHookServer(t, string(ss.secrets["hook-path"]), string(ss.secrets["hook-token"]))
	return ss
}

// cli runs a verb and keeps what it printed for the scan.
func (ss *secretSystem) cli(args ...string) (string, int) {
	ss.t.Helper()
	out, code := ss.system.cli(args...)
	ss.cliOut.WriteString(out)
	return out, code
}

// addHooks gives shop a webhook at every point it has and a command hook,
// and crm a webhook its unplanned failover calls; every URL carries the
// hook secrets. shop's notify-down points at a closed port: its call fails
// (the run goes on), the error path where a URL is most likely to leak.
func (ss *secretSystem) addHooks(ctx context.Context) {
	ss.t.Helper()
	hookURL := ss.hooks.URL + "/hook/" + string(ss.secrets["hook-path"]) + "?token=" + string(ss.secrets["hook-token"])
	downURL := "http://" + freeAddr(ss.t) + "/hook/" + string(ss.secrets["hook-path"]) + "?token=" + string(ss.secrets["hook-token"])
	add := func(group string, hooks ...ferry.Hook) {
		g, err := ss.api.GetGroup(ctx, group)
		require.NoError(ss.t, err)
		g.Hooks = hooks
		_, _, err = ss.api.PutGroup(ctx, g)
		require.NoError(ss.t, err)
	}
	add("shop",
		ferry.Hook{Name: "drain", Point: ferry.HookBeforeQuiesce, URL: hookURL},
		ferry.Hook{Name: "flush", Point: ferry.HookAfterSnapshot, Command: []string{"sh", "-c", "echo flushed", "sh", string(ss.secrets["command-arg"])}},
		ferry.Hook{Name: "notify", Point: ferry.HookAfterPromote, URL: hookURL},
		ferry.Hook{Name: "notify-down", Point: ferry.HookAfterPromote, URL: downURL, TimeoutSeconds: 10, OnFailure: ferry.HookContinue},
		ferry.Hook{Name: "ring", Point: ferry.HookAfterTier, URL: hookURL},
		ferry.Hook{Name: "collect", Point: ferry.HookBeforeCleanup, URL: hookURL},
	)
	add("crm", ferry.Hook{Name: "page", Point: ferry.HookAfterPromote, URL: hookURL})
}

// everyKind runs the whole catalog from the CLI, as TestEveryKindFromTheCLI
// does, with an unplanned failover of crm (site-a down) besides, and a
// drill schedule set, changed and removed. It returns the runs.
func (ss *secretSystem) everyKind(ctx context.Context) []ferry.Run {
	t := ss.t
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		out, code := ss.cli(args...)
		require.Equal(t, 0, code, "ferry %s:\n%s", strings.Join(args, " "), out)
		require.Contains(t, out, "completed", "ferry %s:\n%s", strings.Join(args, " "), out)
	}
	for _, args := range [][]string{
		{"drill", "shop"},
		{"replication", "suspend", "shop", "--yes"},
		{"replication", "resume", "shop"},
		{"unprotect", "shop", "--yes"},
		{"protect", "shop", "--yes"},
		{"share-promote", "shop-media", "--yes"},
		{"share-promote", "shop-media", "--target", "site-a", "--yes"},
		{"failover", "shop", "--yes"},
		{"failback", "shop", "--yes"},
	} {
		run(args...)
	}
	require.NoError(t, ss.sim.SetSiteDown(ctx, "site-a", true))
	run("failover", "crm", "--unplanned", "--yes", "--skip-approval")
	require.NoError(t, ss.sim.SetSiteDown(ctx, "site-a", false))
	for _, args := range [][]string{
		{"reprotect", "crm", "--yes"},
		{"failback", "crm", "--yes", "--skip-approval"},
		{"backend-failover", "a-files", "--yes"},
		{"backend-failover", "a-files", "--target", "default", "--yes"},
		{"evacuate", "site-a", "--yes", "--skip-approval"},
		{"reprotect", "shop", "--yes"},
		{"reprotect", "crm", "--yes"},
	} {
		run(args...)
	}

	// A drill schedule with a hold; a new cron keeps the hold, which the
	// API reads back from Temporal's copy of the schedule's input.
	out, code := ss.cli("drill-schedule", "shop", "0 3 * * 1", "--hold", "10m")
	require.Equal(t, 0, code, out)
	out, code = ss.cli("drill-schedule", "shop", "0 4 * * 1")
	require.Equal(t, 0, code, out)
	scheds, err := ss.api.ListSchedules(ctx)
	require.NoError(t, err)
	require.Len(t, scheds.Items, 1)
	require.Equal(t, "0 4 * * 1", scheds.Items[0].Cron)
	require.Equal(t, 600, scheds.Items[0].HoldSeconds, "the hold is read back through the client's converter: %+v", scheds.Items[0])
	d, err := ss.raw.ScheduleClient().GetHandle(ctx, scheds.Items[0].ScheduleID).Describe(ctx)
	require.NoError(t, err)
	arg := d.Schedule.Action.(*client.ScheduleWorkflowAction).Args[0].(*commonpb.Payload)
	require.Equal(t, ss.sealed, string(arg.Metadata[codec.MetadataEncoding]) == codec.Encoding,
		"a schedule's input is sealed exactly when payloads are: %s", arg.Metadata)
	out, code = ss.cli("drill-schedule", "shop", "--delete")
	require.Equal(t, 0, code, out)

	page, err := ss.api.ListRuns(ctx, apiclient.RunFilter{ListOptions: apiclient.ListOptions{Limit: 200}})
	require.NoError(t, err)
	return page.Items
}

// requireRunsReadable: every kind completed, and the records the API
// answers are whole and readable (whatever Temporal holds).
func (ss *secretSystem) requireRunsReadable(ctx context.Context, runs []ferry.Run) {
	t := ss.t
	t.Helper()
	kinds := map[string]bool{}
	unplanned := false
	for _, r := range runs {
		require.Equal(t, ferry.RunCompleted, r.State, "%s run %s: %s", r.Kind, r.ID, r.Message)
		kinds[r.Kind] = true
		unplanned = unplanned || (r.Kind == ferry.KindFailover && r.Mode == ferry.ModeUnplanned)
		full, err := ss.api.GetRun(ctx, r.ID)
		require.NoError(t, err)
		require.NotEmpty(t, full.Steps, "run %s", r.ID)
		// The CLI's runs, and an evacuation's children after it.
		require.Equal(t, ss.canary, full.RequestedBy, "%s run %s", r.Kind, r.ID)
		md, err := ss.api.Report(ctx, r.ID, true)
		require.NoError(t, err)
		require.Contains(t, string(md), r.ID)
	}
	require.True(t, unplanned, "no unplanned failover ran")
	for _, k := range []string{ferry.KindFailover, ferry.KindFailback, ferry.KindReprotect, ferry.KindProtect, ferry.KindUnprotect,
		ferry.KindSuspend, ferry.KindResume, ferry.KindDrill, ferry.KindBackendFailover, ferry.KindSharePromote, ferry.KindEvacuate} {
		require.True(t, kinds[k], "no completed %s run", k)
	}

	// The hooks ran with their secrets (the webhook answers nothing else),
	// and the one that could not connect says so without its URL.
	for _, h := range []string{"drain", "notify", "ring", "collect", "page"} {
		require.Positive(t, ss.hooks.count(h), "webhook %s never called", h)
	}
	require.Zero(t, ss.hooks.refused, "a webhook call came without the URL's secrets")
	var flushed, down bool
	for _, r := range runs {
		full, err := ss.api.GetRun(ctx, r.ID)
		require.NoError(t, err)
		for _, st := range full.Steps {
			switch st.Name {
			case "hook:flush":
				flushed = true
				require.Equal(t, ferry.StepCompleted, st.State)
				require.Equal(t, "flushed\n", st.Output)
			case "hook:notify-down":
				down = true
				require.Equal(t, ferry.StepFailed, st.State)
				require.Contains(t, st.Error, "webhook call failed", "the record reads the error, sealed or not")
				require.Contains(t, st.Error, "connection refused")
			}
		}
	}
	require.True(t, flushed, "the command hook never ran")
	require.True(t, down, "the failing webhook never ran")
}

// secretsEverywhere runs every kind with the secrets in play and scans what
// the system keeps and writes: every workflow history of the namespace,
// raw; every row of Ferry's database but the groups' own hooks; everything
// the CLI printed; and (at cleanup) every log.
func secretsEverywhere(t *testing.T, sealed bool) (*secretSystem, historyScan) {
	ss := startSecretSystem(t, sealed)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	require.Contains(t, ss.applyDemo(), "group/shop created")
	ss.addHooks(ctx)
	runs := ss.everyKind(ctx)
	ss.requireRunsReadable(ctx, runs)

	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	waitListed(t, ctx, ss.raw, "default", ids)
	scan := scanHistories(t, ctx, ss.raw, "default", ss.secrets, []byte(ss.canary))
	t.Logf("histories: %d executions, %d events, %d payloads (%d sealed, %d search attributes, plain: %v), %d failures (%d encoded), canary in %d events",
		scan.executions, scan.events, scan.payloads, scan.sealed, scan.exempt, scan.plain, scan.failures, scan.encoded, scan.canary)
	require.GreaterOrEqual(t, scan.executions, len(runs), "every run's history was read")
	require.Positive(t, scan.failures, "the failed webhook's failure is in a history")
	tables := scanDatabase(t, ctx, ss.dbURL, ss.secrets, []string{"command-arg", "hook-path", "hook-token"})
	require.Contains(t, tables, "runs")
	require.Contains(t, tables, "audit_log")
	requireNoLeak(t, ss.secrets, []byte(ss.cliOut.String()), "the CLI's output")
	return ss, scan
}

// TestNoSecretInHistoriesOrLogs runs every run kind with secrets in play
// and finds none of them in any workflow history (raw), run record, audit
// row, CLI output or log. The canary shows the scan reads payloads: with
// payloads in the clear, the requester's name is there to be found.
func TestNoSecretInHistoriesOrLogs(t *testing.T) {
	_, scan := secretsEverywhere(t, false)
	require.Positive(t, scan.canary, "the scan sees into payloads")
	require.Zero(t, scan.sealed)
	require.NotEmpty(t, scan.plain)
	require.Zero(t, scan.encoded)
}

// TestSealedPayloads is the same with FERRY_PAYLOAD_KEYS_FILE: besides, every
// payload Temporal holds is sealed (but search attributes, which no codec
// touches), every failure's message is encoded, the requester is nowhere
// in the clear, and yet the API reads every run (checked above) and the
// Temporal CLI decodes a history through the API's codec endpoint, with a
// token only.
func TestSealedPayloads(t *testing.T) {
	ss, scan := secretsEverywhere(t, true)
	require.Zero(t, scan.canary, "a value only payloads carry is not in the clear")
	require.Empty(t, scan.plain, "payloads in the clear, by event and field")
	require.Positive(t, scan.sealed)
	require.Equal(t, scan.failures, scan.encoded, "every failure message is encoded")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	page, err := ss.api.ListRuns(ctx, apiclient.RunFilter{Kind: ferry.KindFailover, Group: "shop"})
	require.NoError(t, err)
	require.NotEmpty(t, page.Items)
	r := page.Items[0]
	show := func(extra ...string) (string, error) {
		args := append([]string{"workflow", "show", "-w", r.WorkflowID, "-r", r.ID,
			"--address", ss.temporal.FrontendHostPort(), "--namespace", "default", "-o", "json"}, extra...)
		out, err := exec.CommandContext(ctx, devserver.BinaryPath(), args...).CombinedOutput()
		return string(out), err
	}
	// The CLI prints payloads' data in base64: leaks finds the canary in
	// that form too.
	canary := map[string][]byte{"canary": []byte(ss.canary)}
	out, err := show()
	require.NoError(t, err, out)
	require.Empty(t, leaks(canary, []byte(out)), "without the codec the history is sealed")
	require.Contains(t, out, base64.StdEncoding.EncodeToString([]byte(codec.Encoding)))
	endpoint := ss.apiURL + "/codec"
	out, err = show("--codec-endpoint", endpoint, "--codec-auth", "Bearer "+ss.token)
	require.NoError(t, err, out)
	require.NotEmpty(t, leaks(canary, []byte(out)), "through the codec endpoint, with a token, the history reads")
	require.NotContains(t, out, base64.StdEncoding.EncodeToString([]byte(codec.Encoding)))
	// Without a token the endpoint answers 401; the CLI retries it until
	// its deadline and gives up without a payload.
	out, err = show("--codec-endpoint", endpoint, "--command-timeout", "5s")
	require.Error(t, err, "without a token the codec endpoint refuses: %s", out)
	require.Empty(t, leaks(canary, []byte(out)))
	serverLog, err := os.ReadFile(filepath.Join(ss.logs, "server.log"))
	require.NoError(t, err)
	require.Contains(t, string(serverLog), "path=/codec/decode status=401")
}
