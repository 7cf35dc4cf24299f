package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
)

// A worker's drivers file: the openstack adapter against the simulator's
// OpenStack-API facades, the probe for checks, and at start a line per
// site and service saying what its microversions allow.
func TestDriversFile(t *testing.T) {
	ctx := context.Background()
	cloud := sim.NewCloud(sim.Options{})
	require.NoError(t, cloud.LoadInventory(demo.Inventory()))
	srv := httptest.NewServer(sim.NewHandler(cloud))
	defer srv.Close()
	clouds, adapterYAML, err := sim.FacadeOpenStackConfig(srv.URL, demo.Inventory())
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "clouds.yaml"), clouds, 0o600))
	var osCfg map[string]any
	require.NoError(t, yaml.Unmarshal(adapterYAML, &osCfg))
	osCfg["clouds_file"] = filepath.Join(dir, "clouds.yaml")
	osCfg["state_dir"] = filepath.Join(dir, "state")
	doc, err := yaml.Marshal(map[string]any{
		"openstack": osCfg,
		"probe":     map[string]any{"sites": map[string]any{"site-b": map[string]any{"resolver": "127.0.0.1:53"}}},
	})
	require.NoError(t, err)
	path := filepath.Join(dir, "drivers.yaml")
	require.NoError(t, os.WriteFile(path, doc, 0o600))

	var logs bytes.Buffer
	set, err := loadDrivers(ctx, path, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	require.NotNil(t, set.Storage)
	require.NotNil(t, set.Compute)
	require.NotNil(t, set.Network)
	require.NotNil(t, set.DNS)
	require.NotNil(t, set.Verify)
	require.Contains(t, logs.String(), `openstack: endpoint ready" site=site-a service=volume max=3.70`)
	// The facades' Manila is Zed's 2.73: promote's quiesce_wait_time (2.75)
	// is said to be missing, at start.
	require.Contains(t, logs.String(), `feature="promote with quiesce_wait_time" needs=2.75`)
	st, err := set.Storage.BackendStatus(ctx, "a-block")
	require.NoError(t, err)
	require.True(t, st.Reachable)

	for name, body := range map[string]string{
		"unknown key":  "openstack:\n  sites: {}\n  colud: x\n",
		"no openstack": "probe: {}\n",
		"bad backend":  "openstack:\n  state_dir: /tmp/x\n  clouds_file: " + filepath.Join(dir, "clouds.yaml") + "\n  sites: {a: {cloud: c}}\n  backends: {b: {site: a}}\n",
	} {
		p := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		_, err := loadDrivers(ctx, p, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "FERRY_DRIVERS_FILE", name)
	}
}
