package main

import (
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/openstack"
	"github.com/ferrydr/ferry/drivers/probe"
	"github.com/ferrydr/ferry/drivers/router"
)

// driversFile is a worker's adapters for a real cloud (FERRY_DRIVERS_FILE):
// the openstack adapter for storage, compute, network and DNS, and the
// probe for http, tcp and dns checks. It names clouds, sites and backends;
// credentials stay in clouds.yaml.
type driversFile struct {
	OpenStack *openstack.Config `yaml:"openstack"`
	Probe     struct {
		Sites map[string]probe.Site `yaml:"sites"`
		// InsecureTLS skips certificate checks of https targets.
		InsecureTLS bool `yaml:"insecure_tls"`
	} `yaml:"probe"`
}

// loadDrivers reads a drivers file and builds the adapters it names.
func loadDrivers(path string) (drivers.Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return drivers.Set{}, fmt.Errorf("FERRY_DRIVERS_FILE: %w", err)
	}
	defer f.Close()
	var df driversFile
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&df); err != nil {
		return drivers.Set{}, fmt.Errorf("FERRY_DRIVERS_FILE %s: %w", path, err)
	}
	if df.OpenStack == nil {
		return drivers.Set{}, fmt.Errorf("FERRY_DRIVERS_FILE %s: no openstack section (the only real cloud adapter so far)", path)
	}
	ad, err := openstack.New(*df.OpenStack)
	if err != nil {
		return drivers.Set{}, fmt.Errorf("FERRY_DRIVERS_FILE %s: %w", path, err)
	}
	verify := router.NewVerify(nil)
	p := &probe.Probe{Sites: df.Probe.Sites, InsecureTLS: df.Probe.InsecureTLS}
	for _, typ := range []string{"http", "tcp", "dns"} {
		verify.Route(typ, nil, p)
	}
	set := drivers.Set{Storage: ad, Replication: ad, Host: ad, Compute: ad, Network: ad, DNS: ad, Verify: verify}
	return set, nil
}
