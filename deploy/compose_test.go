// Package deploy checks the deployment artefacts at the repository root
// (docker-compose.yml, Dockerfile) without a Docker engine: the compose file is
// loaded with compose-go (the library docker compose itself uses) and the
// Dockerfile is parsed as text.
package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

// Service names the rest of Ferry (docs, env defaults, URLs) relies on.
const (
	svcPostgres = "postgresql"
	svcTemporal = "temporal"
	svcUI       = "temporal-ui"
	svcServer   = "ferry-server"
	svcWorker   = "ferry-worker"
	svcSim      = "ferry-sim"
)

var allServices = []string{svcPostgres, svcTemporal, svcUI, svcServer, svcWorker, svcSim}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	return root
}

// loadCompose loads compose YAML the way `docker compose` would, but with an
// explicit environment (not the test process's) so interpolation is
// deterministic. content == nil reads the real ../docker-compose.yml.
func loadCompose(t *testing.T, content []byte, env map[string]string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml"), Content: content}},
		Environment: types.Mapping(env),
	}
	return loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("ferry", true)
		// Resolve build contexts to absolute paths; this is pure path
		// arithmetic and needs no Docker engine.
		o.ResolvePaths = true
	})
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	require.NoError(t, err)
	return b
}

func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, nil, map[string]string{})
	require.NoError(t, err)
	checkCompose(t, p, repoRoot(t))
}

// The database password is interpolated from FERRY_DB_PASSWORD and must reach
// both PostgreSQL and every DSN that logs into it.
func TestComposePasswordInterpolation(t *testing.T) {
	p, err := loadCompose(t, nil, map[string]string{"FERRY_DB_PASSWORD": "s3cret"})
	require.NoError(t, err)

	require.Equal(t, "s3cret", envOf(t, p, svcPostgres, "POSTGRES_PASSWORD"))
	require.Equal(t, "s3cret", envOf(t, p, svcTemporal, "POSTGRES_PWD"))
	for _, name := range []string{svcServer, svcWorker} {
		u, err := url.Parse(envOf(t, p, name, "FERRY_DATABASE_URL"))
		require.NoError(t, err)
		pw, _ := u.User.Password()
		require.Equal(t, "s3cret", pw, "%s DSN password", name)
	}
}

func TestDockerfile(t *testing.T) {
	checkDockerfile(t, string(readFile(t, "Dockerfile")))
}

// The checks must be able to fail: feed them broken variants of the real
// files and expect a failure for each.
func TestChecksCatchMistakes(t *testing.T) {
	compose := string(readFile(t, "docker-compose.yml"))
	dockerfile := string(readFile(t, "Dockerfile"))

	composeCases := map[string][2]string{
		"renamed service":         {"\n  ferry-worker:\n", "\n  ferry-workers:\n"},
		"unpinned image":          {"image: postgres:15", "image: postgres"},
		"latest tag":              {"temporalio/ui:2.42.0", "temporalio/ui:latest"},
		"wrong command":           {`command: ["sim"]`, `command: ["server"]`},
		"temporal address":        {"FERRY_TEMPORAL_ADDRESS: temporal:7233", "FERRY_TEMPORAL_ADDRESS: localhost:7233"},
		"database host":           {"@postgresql:5432/ferry", "@127.0.0.1:5432/ferry"},
		"ui port not published":   {`"8233:8080"`, `"8080"`},
		"single worker":           {"replicas: 2", "replicas: 1"},
		"temporal without db":     {"POSTGRES_SEEDS: postgresql\n", "POSTGRES_SEEDS: db\n"},
		"other build context":     {"  ferry-sim:\n    build: .\n", "  ferry-sim:\n    build: ./deploy\n"},
		"server port":             {`"8080:8080"`, `"9090:8080"`},
		"temporal port":           {`"7233:7233"`, `"7234:7233"`},
		"no postgres healthcheck": {"condition: service_healthy\n    ports:\n      - \"7233", "condition: service_started\n    ports:\n      - \"7233"},
	}
	for name, c := range composeCases {
		t.Run("compose/"+name, func(t *testing.T) {
			require.Contains(t, compose, c[0], "mutation anchor missing; update the test")
			broken := strings.Replace(compose, c[0], c[1], 1)
			p, err := loadCompose(t, []byte(broken), map[string]string{})
			if err != nil {
				t.Logf("rejected by the loader: %v", err)
				return // a load error is a failure too
			}
			root := repoRoot(t)
			requireFails(t, func(rt require.TestingT) { checkCompose(rt, p, root) })
		})
	}

	dockerfileCases := map[string][2]string{
		"cgo enabled":      {"RUN CGO_ENABLED=0", "RUN CGO_ENABLED=1"},
		"root user":        {"USER nonroot:nonroot", "USER root"},
		"no user":          {"USER nonroot:nonroot", ""},
		"single stage":     {"FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/ferry /ferry", "RUN cp /out/ferry /ferry"},
		"other entrypoint": {`ENTRYPOINT ["/ferry"]`, `ENTRYPOINT ["/bin/sh"]`},
	}
	for name, c := range dockerfileCases {
		t.Run("dockerfile/"+name, func(t *testing.T) {
			require.Contains(t, dockerfile, c[0], "mutation anchor missing; update the test")
			broken := strings.Replace(dockerfile, c[0], c[1], 1)
			requireFails(t, func(rt require.TestingT) { checkDockerfile(rt, broken) })
		})
	}
}

// ---- compose checks ---------------------------------------------------------

func checkCompose(t require.TestingT, p *types.Project, root string) {
	for _, name := range allServices {
		_, ok := p.Services[name]
		require.True(t, ok, "service %q missing from docker-compose.yml", name)
	}

	// Ferry's three services build the repo's own Dockerfile and choose the
	// subcommand with `command`.
	wantDockerfile := filepath.Join(root, "Dockerfile")
	for name, cmd := range map[string]string{svcServer: "server", svcWorker: "worker", svcSim: "sim"} {
		s := p.Services[name]
		require.NotNil(t, s.Build, "%s must build from source", name)
		require.Equal(t, root, filepath.Clean(s.Build.Context), "%s build context", name)
		df := s.Build.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.Build.Context, df)
		}
		require.Equal(t, wantDockerfile, filepath.Clean(df), "%s Dockerfile", name)
		require.FileExists(t, df)
		require.Equal(t, types.ShellCommand{cmd}, s.Command, "%s command", name)
	}

	// Ports.
	requirePublished(t, p, svcServer, 8080, "8080")
	requirePublished(t, p, svcTemporal, 7233, "7233")
	requirePublished(t, p, svcUI, 8080, "8233")

	// Server and workers reach Temporal and PostgreSQL by compose service name.
	for _, name := range []string{svcServer, svcWorker} {
		host, port, err := net.SplitHostPort(envOf(t, p, name, "FERRY_TEMPORAL_ADDRESS"))
		require.NoError(t, err, "%s FERRY_TEMPORAL_ADDRESS", name)
		require.Equal(t, svcTemporal, host, "%s FERRY_TEMPORAL_ADDRESS host", name)
		require.Equal(t, "7233", port, "%s FERRY_TEMPORAL_ADDRESS port", name)

		u, err := url.Parse(envOf(t, p, name, "FERRY_DATABASE_URL"))
		require.NoError(t, err, "%s FERRY_DATABASE_URL", name)
		require.Equal(t, "postgres", u.Scheme, "%s FERRY_DATABASE_URL scheme", name)
		require.Equal(t, svcPostgres, u.Hostname(), "%s FERRY_DATABASE_URL host", name)
		require.Equal(t, "5432", u.Port(), "%s FERRY_DATABASE_URL port", name)
		require.Equal(t, "/ferry", u.Path, "%s FERRY_DATABASE_URL database", name)
		require.Contains(t, p.Services[name].DependsOn, svcTemporal, "%s depends_on temporal", name)
	}
	// Default (local) credentials interpolate to the documented DSN.
	require.Equal(t, "postgres://ferry:ferry@postgresql:5432/ferry?sslmode=disable", envOf(t, p, svcServer, "FERRY_DATABASE_URL"))
	require.Equal(t, "0.0.0.0:8080", envOf(t, p, svcServer, "FERRY_HTTP_ADDR"))

	// Workers find the simulator by service name and are scaled out.
	simURL, err := url.Parse(envOf(t, p, svcWorker, "FERRY_SIM_URL"))
	require.NoError(t, err)
	require.Equal(t, svcSim, simURL.Hostname())
	_, simPort, err := net.SplitHostPort(envOf(t, p, svcSim, "FERRY_SIM_ADDR"))
	require.NoError(t, err)
	require.Equal(t, simPort, simURL.Port(), "worker FERRY_SIM_URL port matches the simulator's listen port")
	w := p.Services[svcWorker]
	require.NotNil(t, w.Deploy, "ferry-worker needs deploy.replicas")
	require.NotNil(t, w.Deploy.Replicas, "ferry-worker needs deploy.replicas")
	require.GreaterOrEqual(t, *w.Deploy.Replicas, 2, "ferry-worker replicas")

	// Temporal runs on the compose PostgreSQL and waits for it to be healthy.
	tmp := p.Services[svcTemporal]
	dep, ok := tmp.DependsOn[svcPostgres]
	require.True(t, ok, "temporal must depend on postgresql")
	require.Equal(t, types.ServiceConditionHealthy, dep.Condition, "temporal waits for a healthy postgresql")
	require.NotNil(t, p.Services[svcPostgres].HealthCheck, "postgresql needs a healthcheck")
	require.Equal(t, "postgres12", envOf(t, p, svcTemporal, "DB"))
	require.Equal(t, svcPostgres, envOf(t, p, svcTemporal, "POSTGRES_SEEDS"))
	require.Contains(t, p.Services[svcUI].DependsOn, svcTemporal)
	require.Equal(t, "temporal:7233", envOf(t, p, svcUI, "TEMPORAL_ADDRESS"))

	// Every pulled image is pinned to a tag or digest, never :latest.
	for name, s := range p.Services {
		if s.Image == "" {
			require.NotNil(t, s.Build, "%s has neither image nor build", name)
			continue
		}
		requirePinned(t, name, s.Image)
	}
}

func envOf(t require.TestingT, p *types.Project, service, key string) string {
	s, ok := p.Services[service]
	require.True(t, ok, "service %q missing", service)
	v, ok := s.Environment[key]
	require.True(t, ok, "%s: environment %s not set", service, key)
	require.NotNil(t, v, "%s: environment %s has no value", service, key)
	return *v
}

func requirePublished(t require.TestingT, p *types.Project, service string, target uint32, published string) {
	for _, port := range p.Services[service].Ports {
		if port.Target == target && port.Published == published {
			return
		}
	}
	require.Fail(t, "port not published", "%s must publish %s -> container port %d; has %+v",
		service, published, target, p.Services[service].Ports)
}

func requirePinned(t require.TestingT, service, image string) {
	if strings.Contains(image, "@sha256:") {
		return // pinned by digest
	}
	ref := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(ref, ":")
	require.True(t, i >= 0 && i < len(ref)-1, "%s: image %q has no tag", service, image)
	require.NotEqual(t, "latest", ref[i+1:], "%s: image %q uses :latest", service, image)
}

// ---- Dockerfile checks ------------------------------------------------------

type instruction struct {
	cmd  string // upper-cased keyword
	args string
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// backslash continuations and dropping comments and blank lines.
func parseDockerfile(text string) [][]instruction {
	var stages [][]instruction
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		if s := strings.TrimSpace(cur.String()); s != "" {
			logical = append(logical, s)
		}
		cur.Reset()
	}
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			continue // parser directives / ARG before the first FROM
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

func checkDockerfile(t require.TestingT, text string) {
	stages := parseDockerfile(text)
	require.GreaterOrEqual(t, len(stages), 2, "Dockerfile must be multi-stage (build + runtime)")

	// The binary is built static.
	cgoOff := false
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			if (in.cmd == "RUN" || in.cmd == "ENV" || in.cmd == "ARG") && strings.Contains(in.args, "CGO_ENABLED=0") {
				cgoOff = true
			}
		}
	}
	require.True(t, cgoOff, "a build stage must set CGO_ENABLED=0")

	final := stages[len(stages)-1]
	var user string
	var entrypoint []string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = parseExecForm(in.args)
		}
	}
	require.NotEmpty(t, user, "final stage must set USER")
	name, _, _ := strings.Cut(user, ":")
	require.NotContains(t, []string{"root", "0"}, name, "final stage must not run as root")
	require.NotEmpty(t, entrypoint, "final stage must set ENTRYPOINT")
	require.Equal(t, "/ferry", entrypoint[0], "ENTRYPOINT must run /ferry")
}

// parseExecForm returns the argv of an exec-form (JSON) instruction, or the
// whitespace-split words of a shell-form one.
func parseExecForm(args string) []string {
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err == nil {
		return argv
	}
	return strings.Fields(args)
}

// ---- helpers ----------------------------------------------------------------

// recorder is a require.TestingT that records failures instead of failing
// the real test, so we can assert that a check rejects bad input.
type recorder struct {
	failed bool
	msgs   []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) FailNow() {
	r.failed = true
	runtime.Goexit()
}

func requireFails(t *testing.T, check func(require.TestingT)) {
	t.Helper()
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	require.True(t, r.failed, "check accepted a broken file")
	t.Logf("rejected as expected: %s", strings.Join(r.msgs, "; "))
}
