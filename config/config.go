// Package config reads Ferry's configuration from the environment (FERRY_
// prefix). Defaults work on one machine: a local Temporal dev server and the
// local PostgreSQL.
package config

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is every setting of every subcommand; each uses what it needs.
type Config struct {
	TemporalAddress   string `env:"TEMPORAL_ADDRESS" envDefault:"127.0.0.1:7233"`
	TemporalNamespace string `env:"TEMPORAL_NAMESPACE" envDefault:"default"`
	TemporalUIURL     string `env:"TEMPORAL_UI_URL" envDefault:"http://127.0.0.1:8233"`
	TaskQueue         string `env:"TASK_QUEUE" envDefault:"ferry"`
	DatabaseURL       string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/ferry" secret:"url"`
	HTTPAddr          string `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// APIURL is where the client verbs (apply, failover, runs, watch) find
	// the API.
	APIURL string `env:"API_URL" envDefault:"http://127.0.0.1:8080"`
	// SimURL is where a worker finds `ferry sim` in another process; empty
	// means http://$FERRY_SIM_ADDR. (`ferry dev` runs its simulator
	// in-process and ignores it.)
	SimURL  string `env:"SIM_URL"`
	SimAddr string `env:"SIM_ADDR" envDefault:"127.0.0.1:8090"`
	// DriversFile configures a worker's adapters for a real cloud (the
	// openstack adapter and the probe, docs/openstack.md); empty means the
	// simulator at SimURL.
	DriversFile string `env:"DRIVERS_FILE"`
	// DataDir holds the dev server's SQLite file and logs of `ferry dev`.
	DataDir   string `env:"DATA_DIR" envDefault:".data"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"` // text or json
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	// ProgressTTL and TokenTTL are the API's caches: how long a live run's
	// progress is reused by concurrent readers, and how long a checked
	// token is trusted without reading the store (so how long a revocation
	// made through another API replica may take to apply). 0 turns a
	// cache off (docs/benchmarks.md measures them).
	ProgressTTL time.Duration `env:"PROGRESS_TTL" envDefault:"250ms"`
	TokenTTL    time.Duration `env:"TOKEN_TTL" envDefault:"2s"`
	// MonitorInterval is how often each backend's replication monitor reads
	// its replicas (the workers start one monitor per backend).
	MonitorInterval time.Duration `env:"MONITOR_INTERVAL" envDefault:"5m"`
	// MetricsAddr is where `ferry worker` serves its Prometheus metrics
	// (plain HTTP, GET /metrics, no token: bind it to a private address);
	// empty serves none. The API serves its own on /metrics, and `ferry
	// dev` serves everything there (docs/metrics.md).
	MetricsAddr string `env:"METRICS_ADDR"`
	// Worker tuning (docs/benchmarks.md): concurrent activity and workflow
	// task slots, and how many long polls each worker keeps open per task
	// kind (the SDK's default is 2; more pollers pick up a burst of tasks,
	// such as an evacuation's, with less queueing).
	MaxConcurrentActivities    int `env:"MAX_CONCURRENT_ACTIVITIES" envDefault:"200"`
	MaxConcurrentWorkflowTasks int `env:"MAX_CONCURRENT_WORKFLOW_TASKS" envDefault:"100"`
	WorkflowTaskPollers        int `env:"WORKFLOW_TASK_POLLERS" envDefault:"2"`
	ActivityTaskPollers        int `env:"ACTIVITY_TASK_POLLERS" envDefault:"2"`
	// MaxConcurrentPerBackend bounds the batch calls (snapshot, final
	// sync, demote, promote) one worker makes to one storage backend at once.
	MaxConcurrentPerBackend int `env:"MAX_CONCURRENT_PER_BACKEND" envDefault:"8"`
	// MaxBootsPerTier bounds how many servers of one tier boot at once
	// (in waves, each when the one before is healthy); 0 boots a tier whole.
	MaxBootsPerTier int `env:"MAX_BOOTS_PER_TIER" envDefault:"0"`

	// Security (docs/security.md), checked by checkSecurity.
	// TLSCert and TLSKey (PEM files) make `ferry server` and `ferry dev`
	// serve the API over HTTPS.
	TLSCert string `env:"TLS_CERT"`
	TLSKey  string `env:"TLS_KEY"`
	// Token is the API token the client verbs send as their bearer.
	Token string `env:"TOKEN" secret:"true"`
	// APICAFile is a PEM bundle the client verbs trust for the API's
	// certificate (empty: the system's roots).
	APICAFile string `env:"API_CA"`
	// The Temporal client's mTLS: a client certificate and key, the CA
	// that signed the server's certificate, and the name to check it for.
	TemporalTLSCert       string `env:"TEMPORAL_TLS_CERT"`
	TemporalTLSKey        string `env:"TEMPORAL_TLS_KEY"`
	TemporalTLSCA         string `env:"TEMPORAL_TLS_CA"`
	TemporalTLSServerName string `env:"TEMPORAL_TLS_SERVER_NAME"`
	// TemporalAPIKey authenticates to Temporal with an API key (Temporal
	// Cloud); it implies TLS.
	TemporalAPIKey string `env:"TEMPORAL_API_KEY" secret:"true"`
	// PayloadKeysFile is the keyring ("id:base64key" lines, the first
	// encrypts) that seals every payload Ferry hands Temporal; empty means
	// payloads are not encrypted. The file is the secret, its path is not.
	PayloadKeysFile string `env:"PAYLOAD_KEYS_FILE"`
}

// Load reads the configuration from the environment.
func Load() (Config, error) {
	return LoadFrom(nil)
}

// LoadFrom reads the configuration from environ (nil: the process
// environment), so tests can pass their own.
func LoadFrom(environ map[string]string) (Config, error) {
	var c Config
	opts := env.Options{Prefix: "FERRY_"}
	if environ != nil {
		opts.Environment = environ
	}
	if err := env.ParseWithOptions(&c, opts); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"FERRY_MAX_CONCURRENT_ACTIVITIES", c.MaxConcurrentActivities},
		{"FERRY_MAX_CONCURRENT_WORKFLOW_TASKS", c.MaxConcurrentWorkflowTasks},
		{"FERRY_WORKFLOW_TASK_POLLERS", c.WorkflowTaskPollers},
		{"FERRY_ACTIVITY_TASK_POLLERS", c.ActivityTaskPollers},
		{"FERRY_MAX_CONCURRENT_PER_BACKEND", c.MaxConcurrentPerBackend},
	} {
		if f.v < 1 {
			return Config{}, fmt.Errorf("config: %s: want at least 1, got %d", f.name, f.v)
		}
	}
	if c.MaxBootsPerTier < 0 {
		return Config{}, fmt.Errorf("config: FERRY_MAX_BOOTS_PER_TIER: want 0 (a whole tier at once) or more, got %d", c.MaxBootsPerTier)
	}
	if c.ProgressTTL < 0 || c.ProgressTTL > time.Minute {
		return Config{}, fmt.Errorf("config: FERRY_PROGRESS_TTL: want 0 (off) to 1m, got %s", c.ProgressTTL)
	}
	// A revoked token keeps working on other replicas for up to this long.
	if c.TokenTTL < 0 || c.TokenTTL > time.Minute {
		return Config{}, fmt.Errorf("config: FERRY_TOKEN_TTL: want 0 (off) to 1m, got %s", c.TokenTTL)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return Config{}, fmt.Errorf("config: FERRY_LOG_FORMAT: want text or json, got %q", c.LogFormat)
	}
	if err := c.checkSecurity(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Print writes the effective configuration, one FERRY_ variable a line, with
// secrets masked (the password of a URL, tokens and keys).
func (c Config) Print(w io.Writer) {
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		switch f.Tag.Get("secret") {
		case "url":
			val = MaskURL(val)
		case "true":
			if val != "" {
				val = "xxxxx"
			}
		}
		fmt.Fprintf(w, "FERRY_%s=%s\n", f.Tag.Get("env"), val)
	}
}

// MaskURL hides the password of a URL, for logs and --print-config.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
