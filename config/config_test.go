package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaults(t *testing.T) {
	c, err := LoadFrom(map[string]string{})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7233", c.TemporalAddress)
	require.Equal(t, "default", c.TemporalNamespace)
	require.Equal(t, "ferry", c.TaskQueue)
	require.Equal(t, "postgres://postgres@127.0.0.1:5432/ferry", c.DatabaseURL)
	require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
}

func TestPrintMasksSecrets(t *testing.T) {
	c, err := LoadFrom(map[string]string{"FERRY_DATABASE_URL": "postgres://ferry:hunter2@db:5432/ferry"})
	require.NoError(t, err)
	var b strings.Builder
	c.Print(&b)
	require.Contains(t, b.String(), "FERRY_DATABASE_URL=postgres://ferry:xxxxx@db:5432/ferry")
	require.NotContains(t, b.String(), "hunter2")
	require.Contains(t, b.String(), "FERRY_TASK_QUEUE=ferry")
}

func TestBadLogFormat(t *testing.T) {
	_, err := LoadFrom(map[string]string{"FERRY_LOG_FORMAT": "xml"})
	require.ErrorContains(t, err, "FERRY_LOG_FORMAT")
}

func TestWorkerTuning(t *testing.T) {
	c, err := LoadFrom(map[string]string{})
	require.NoError(t, err)
	require.Equal(t, 200, c.MaxConcurrentActivities)
	require.Equal(t, 100, c.MaxConcurrentWorkflowTasks)
	require.Equal(t, 2, c.WorkflowTaskPollers)
	require.Equal(t, 2, c.ActivityTaskPollers)
	require.Equal(t, 8, c.MaxConcurrentPerBackend)
	require.Equal(t, 0, c.MaxBootsPerTier)

	c, err = LoadFrom(map[string]string{"FERRY_WORKFLOW_TASK_POLLERS": "8", "FERRY_ACTIVITY_TASK_POLLERS": "16"})
	require.NoError(t, err)
	require.Equal(t, 8, c.WorkflowTaskPollers)
	require.Equal(t, 16, c.ActivityTaskPollers)

	_, err = LoadFrom(map[string]string{"FERRY_ACTIVITY_TASK_POLLERS": "0"})
	require.ErrorContains(t, err, "FERRY_ACTIVITY_TASK_POLLERS: want at least 1, got 0")
	_, err = LoadFrom(map[string]string{"FERRY_MAX_CONCURRENT_PER_BACKEND": "-1"})
	require.ErrorContains(t, err, "FERRY_MAX_CONCURRENT_PER_BACKEND: want at least 1, got -1")
	_, err = LoadFrom(map[string]string{"FERRY_MAX_BOOTS_PER_TIER": "-2"})
	require.ErrorContains(t, err, "FERRY_MAX_BOOTS_PER_TIER: want 0 (a whole tier at once) or more, got -2")
}

func TestPrintMasksTokensAndKeys(t *testing.T) {
	c, err := LoadFrom(map[string]string{"FERRY_TOKEN": "fry_secret123", "FERRY_TEMPORAL_API_KEY": "tkey-456"})
	require.NoError(t, err)
	var b strings.Builder
	c.Print(&b)
	require.Contains(t, b.String(), "FERRY_TOKEN=xxxxx")
	require.Contains(t, b.String(), "FERRY_TEMPORAL_API_KEY=xxxxx")
	require.NotContains(t, b.String(), "secret123")
	require.NotContains(t, b.String(), "tkey-456")
	c, err = LoadFrom(map[string]string{})
	require.NoError(t, err)
	b.Reset()
	c.Print(&b)
	require.Contains(t, b.String(), "FERRY_TOKEN=\n", "an unset secret shows as unset")
}

func TestHalfATLSConfigurationIsRefused(t *testing.T) {
	_, err := LoadFrom(map[string]string{"FERRY_TLS_CERT": "/etc/ferry/cert.pem"})
	require.ErrorContains(t, err, "FERRY_TLS_KEY")
	_, err = LoadFrom(map[string]string{"FERRY_TEMPORAL_TLS_KEY": "/etc/ferry/client.key"})
	require.ErrorContains(t, err, "FERRY_TEMPORAL_TLS_CERT")
	c, err := LoadFrom(map[string]string{})
	require.NoError(t, err)
	tc, err := c.TemporalTLS()
	require.NoError(t, err)
	require.Nil(t, tc, "plaintext to a local dev server by default")
	api, err := c.APITLS()
	require.NoError(t, err)
	require.Nil(t, api)
	c, err = LoadFrom(map[string]string{"FERRY_TEMPORAL_API_KEY": "k"})
	require.NoError(t, err)
	tc, err = c.TemporalTLS()
	require.NoError(t, err)
	require.NotNil(t, tc, "an API key goes over TLS")
	c, err = LoadFrom(map[string]string{"FERRY_TLS_CERT": "/nonexistent/c.pem", "FERRY_TLS_KEY": "/nonexistent/k.pem"})
	require.NoError(t, err)
	_, err = c.APITLS()
	require.ErrorContains(t, err, "FERRY_TLS_CERT")
}

func TestAPICacheLifetimes(t *testing.T) {
	c, err := LoadFrom(map[string]string{})
	require.NoError(t, err)
	require.Equal(t, 250*time.Millisecond, c.ProgressTTL)
	require.Equal(t, 2*time.Second, c.TokenTTL)

	c, err = LoadFrom(map[string]string{"FERRY_PROGRESS_TTL": "0", "FERRY_TOKEN_TTL": "500ms"})
	require.NoError(t, err)
	require.Zero(t, c.ProgressTTL)
	require.Equal(t, 500*time.Millisecond, c.TokenTTL)

	for name, v := range map[string]string{"FERRY_PROGRESS_TTL": "-1s", "FERRY_TOKEN_TTL": "2m"} {
		_, err := LoadFrom(map[string]string{name: v})
		require.ErrorContains(t, err, name, v)
	}
}
