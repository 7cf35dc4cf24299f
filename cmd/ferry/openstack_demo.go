package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/openstack"
	"github.com/ferrydr/ferry/drivers/sim"
)

// openstackDemoOptions is `ferry dev --openstack`: the demo's storage,
// compute, network and DNS go through the OpenStack adapter — gophercloud's
// real requests to Cinder, Manila, Nova, Neutron and Designate APIs —
// served by the simulator's OpenStack-API facades, which are simulated
// clouds and say so (X-Ferry-Facade: simulator).
type openstackDemoOptions struct{ enabled bool }

func openstackDemoFlags(fs *flag.FlagSet) *openstackDemoOptions {
	o := &openstackDemoOptions{}
	fs.BoolVar(&o.enabled, "openstack", false, "drive the demo through the OpenStack adapter, against the simulator's OpenStack-API facades (docs/openstack.md)")
	return o
}

// wire returns the drivers the demo runs on: base when --openstack is off;
// else the adapter, configured for the facades at simAddr, for every port
// but verification. Checks stay the simulator's: the servers they probe
// exist only in its model. The adapter's configuration and clouds.yaml
// are written under dataDir/openstack, where an operator can read what a
// real deployment's would look like; its ledger starts empty, like the
// in-process simulator.
func (o *openstackDemoOptions) wire(dataDir, simAddr string, inv ferry.Inventory, base drivers.Set, logger *slog.Logger) (drivers.Set, error) {
	if !o.enabled {
		return base, nil
	}
	clouds, adapterYAML, err := sim.FacadeOpenStackConfig("http://"+simAddr, inv)
	if err != nil {
		return drivers.Set{}, fmt.Errorf("openstack demo: %w", err)
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, "openstack"))
	if err != nil {
		return drivers.Set{}, err
	}
	state := filepath.Join(dir, "state")
	if err := os.RemoveAll(state); err != nil {
		return drivers.Set{}, fmt.Errorf("openstack demo: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return drivers.Set{}, fmt.Errorf("openstack demo: %w", err)
	}
	var cfg openstack.Config
	if err := yaml.Unmarshal(adapterYAML, &cfg); err != nil {
		return drivers.Set{}, fmt.Errorf("openstack demo: adapter config: %w", err)
	}
	cfg.CloudsFile, cfg.StateDir = filepath.Join(dir, "clouds.yaml"), state
	if cfg.DNSSite == "" && len(inv.Groups) > 0 {
		// The demo's zone is served by the DR site's Designate, which is
		// up when a failover needs it.
		cfg.DNSSite = inv.Groups[0].DRSite
	}
	full, err := yaml.Marshal(cfg)
	if err != nil {
		return drivers.Set{}, err
	}
	for name, data := range map[string][]byte{"clouds.yaml": clouds, "openstack.yaml": full} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return drivers.Set{}, fmt.Errorf("openstack demo: %w", err)
		}
	}
	ad, err := openstack.New(cfg)
	if err != nil {
		return drivers.Set{}, fmt.Errorf("openstack demo: %w", err)
	}
	logger.Warn("drivers: the OpenStack adapter against the simulator's OpenStack-API facades (SIMULATED clouds, not real OpenStack)", "config", filepath.Join(dir, "openstack.yaml"))
	return drivers.Set{Storage: ad, Replication: ad, Host: ad, Compute: ad, Network: ad, DNS: ad, Verify: base.Verify}, nil
}
