package sim

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	ferry "github.com/ferrydr/ferry"
)

// FacadeProjectID is the project the facades' clouds.yaml names (noauth
// takes any; this one is stable so logs and URLs compare).
var FacadeProjectID = strings.ReplaceAll(FacadeID("project", "ferry"), "-", "")

// FacadeCloudName is the clouds.yaml entry of a site's facade endpoints.
func FacadeCloudName(site string) string { return "ferry-sim-" + site }

// versionLike is what gophercloud's BaseEndpoint takes for an API version
// anywhere in a path: a site whose name has it would cut the endpoint short.
var versionLike = regexp.MustCompile(`v[0-9.]+`)

// FacadeOpenStackConfig writes what Ferry's OpenStack adapter needs to run
// against the simulator's OpenStack-API facades at baseURL (e.g.
// http://127.0.0.1:8090): a clouds.yaml with one noauth cloud per site
// (FacadeCloudName), whose endpoint overrides are that site's facade
// endpoints (volume, shared file system, compute, network, dns), and the
// adapter's configuration (drivers/openstack Config's YAML) naming each
// site's cloud and each cinder and manila backend of inv as the facades
// show it. The adapter's configuration has no clouds_file or state_dir:
// the caller sets both (drivers/sim cannot import the adapter).
//
// A cinder backend of one member is the service "<member>@<backend>", of
// several the cluster "<backend>@<backend>"; one that is a replication
// target of another cinder backend and holds no group volume of its own is
// also that backend's target_of with backend_id its target id. A manila
// backend is the service "<first member>@<backend>" in its site's zone.
func FacadeOpenStackConfig(baseURL string, inv ferry.Inventory) (cloudsYAML, adapterYAML []byte, err error) {
	base := strings.TrimSuffix(baseURL, "/")
	type cloud struct {
		AuthType string `yaml:"auth_type"`
		Auth     struct {
			Username  string `yaml:"username"`
			ProjectID string `yaml:"project_id"`
		} `yaml:"auth"`
		RegionName string `yaml:"region_name"`
		Volume     string `yaml:"block_storage_endpoint_override"`
		Share      string `yaml:"shared_file_system_endpoint_override"`
		Compute    string `yaml:"compute_endpoint_override"`
		Network    string `yaml:"network_endpoint_override"`
		DNS        string `yaml:"dns_endpoint_override"`
	}
	type site struct {
		Cloud string `yaml:"cloud"`
	}
	type backend struct {
		Site             string `yaml:"site"`
		Service          string `yaml:"service,omitempty"`
		Host             string `yaml:"host,omitempty"`
		Cluster          string `yaml:"cluster,omitempty"`
		TargetOf         string `yaml:"target_of,omitempty"`
		BackendID        string `yaml:"backend_id,omitempty"`
		AvailabilityZone string `yaml:"availability_zone,omitempty"`
	}
	clouds := map[string]cloud{}
	cfg := struct {
		Sites    map[string]site    `yaml:"sites"`
		Backends map[string]backend `yaml:"backends"`
	}{Sites: map[string]site{}, Backends: map[string]backend{}}

	for _, s := range inv.Sites {
		if versionLike.MatchString(s.Name) {
			return nil, nil, fmt.Errorf("site %q: its name looks like an API version to gophercloud's endpoint discovery (v followed by a digit), which would cut the facade's endpoints short; rename the site", s.Name)
		}
		root := base + "/openstack/" + s.Name
		var c cloud
		c.AuthType, c.RegionName = "none", s.Name
		c.Auth.Username, c.Auth.ProjectID = "admin", FacadeProjectID
		c.Volume = root + "/volume/v3/"
		c.Share = root + "/share/v2/" + FacadeProjectID + "/"
		c.Compute = root + "/compute/v2.1/"
		c.Network = root + "/network/v2.0/"
		c.DNS = root + "/dns/v2/"
		clouds[FacadeCloudName(s.Name)] = c
		cfg.Sites[s.Name] = site{Cloud: FacadeCloudName(s.Name)}
	}

	primary := map[string]bool{} // backends that hold group volumes
	for _, g := range inv.Groups {
		for _, v := range g.Volumes {
			primary[v.Backend] = true
		}
	}
	byName := map[string]ferry.Backend{}
	for _, b := range inv.Backends {
		byName[b.Name] = b
	}
	for _, b := range inv.Backends {
		members := b.Members
		if len(members) == 0 {
			members = []string{b.Name}
		}
		switch b.Type {
		case "cinder":
			be := backend{Site: b.Site, Service: "volume"}
			if len(members) > 1 {
				be.Cluster = b.Name + "@" + b.Name
			} else {
				be.Host = members[0] + "@" + b.Name
			}
			cfg.Backends[b.Name] = be
		case "manila":
			cfg.Backends[b.Name] = backend{Site: b.Site, Service: "share", Host: members[0] + "@" + b.Name, AvailabilityZone: b.Site}
		}
	}
	// Replication targets: in inventory order, never both ends of a pair.
	for _, p := range inv.Backends {
		if p.Type != "cinder" || cfg.Backends[p.Name].TargetOf != "" {
			continue
		}
		for _, t := range p.ReplicationTargets {
			tb, ok := cfg.Backends[t.Backend]
			if !ok || byName[t.Backend].Type != "cinder" || primary[t.Backend] || tb.TargetOf != "" {
				continue
			}
			tb.TargetOf, tb.BackendID = p.Name, t.ID
			cfg.Backends[t.Backend] = tb
		}
	}
	cloudsYAML, err = yaml.Marshal(map[string]any{"clouds": clouds})
	if err != nil {
		return nil, nil, fmt.Errorf("clouds.yaml: %w", err)
	}
	adapterYAML, err = yaml.Marshal(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("adapter config: %w", err)
	}
	return cloudsYAML, adapterYAML, nil
}
