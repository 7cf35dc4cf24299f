package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

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

// loadDrivers reads a drivers file and builds the adapters it names, then
// logs what each site's OpenStack endpoints cannot do at their
// microversions, so an operator reads it when the worker starts rather
// than in the middle of a failover. An endpoint that does not answer now
// is logged and does not stop the worker: a site may be down.
func loadDrivers(ctx context.Context, path string, logger *slog.Logger) (drivers.Set, error) {
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
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, s := range ad.Support(sctx) {
		switch {
		case s.Error != "":
			logger.Warn("openstack: endpoint not read", "site", s.Site, "service", s.Service, "error", s.Error)
		case len(s.Missing) > 0:
			for _, f := range s.Missing {
				logger.Warn("openstack: the endpoint's microversion cannot do this", "site", s.Site, "service", s.Service, "max", s.Max, "used", s.Used, "feature", f.Name, "needs", f.Needs)
			}
		default:
			logger.Info("openstack: endpoint ready", "site", s.Site, "service", s.Service, "max", s.Max, "used", s.Used)
		}
	}
	return set, nil
}
