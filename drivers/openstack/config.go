package openstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/noauth"
	"gopkg.in/yaml.v3"
)

// Config says which cloud serves each site and which Cinder backend each
// Ferry backend is. It holds names only: credentials stay in clouds.yaml
// (and its secure.yaml), where the operator's other OpenStack tools read
// them, and never enter a workflow's inputs.
type Config struct {
	// CloudsFile is the clouds.yaml to read; empty searches where every
	// OpenStack client does: $OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
	// ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml.
	CloudsFile string `yaml:"clouds_file,omitempty" json:"clouds_file,omitempty"`
	// Sites maps a Ferry site to its cloud and region.
	Sites map[string]Site `yaml:"sites" json:"sites"`
	// Backends maps a Ferry backend to a Cinder volume service (Host,
	// "host@backend") or an active-active cluster (Cluster,
	// "cluster@backend") at a site.
	Backends map[string]Backend `yaml:"backends" json:"backends"`
	// StateDir keeps the idempotency ledger (Cinder cannot tell a repeated
	// request from a new one).
	StateDir string `yaml:"state_dir" json:"state_dir"`
	// Timeout bounds one HTTP request (default 30s); SettleTimeout bounds
	// the wait for Cinder to finish a failover it accepted (default 5m,
	// and never beyond the caller's context).
	Timeout       time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	SettleTimeout time.Duration `yaml:"settle_timeout,omitempty" json:"settle_timeout,omitempty"`
	// DNSSite names the site whose Designate holds the zones the DNS port
	// reads and repoints (Designate is one per cloud).
	DNSSite string `yaml:"dns_site,omitempty" json:"dns_site,omitempty"`

	// bootVolumes, when set, gives Boot the ids of a site's volumes instead
	// of that site's Cinder. Not configurable: tests against a simulator
	// facade that has no Cinder set it (nova.go).
	bootVolumes func(ctx context.Context, site string, names []string) ([]string, error)
}

// Site is one site's cloud: a clouds.yaml entry, and optionally a region of
// it (two sites may be two regions of one cloud).
type Site struct {
	Cloud  string `yaml:"cloud" json:"cloud"`
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Flavor is the Nova flavor (name or id) Boot gives a server at this
	// site when the production server's flavor cannot be read (its site is
	// down); otherwise the production server's flavor name is used.
	Flavor string `yaml:"flavor,omitempty" json:"flavor,omitempty"`
}

// Backend is a storage backend at a site. Service says which API holds it:
// "volume" (Cinder, the default) or "share" (Manila).
//
// A Cinder backend is a cinder-volume service: exactly one of Host
// ("host@backend") and Cluster ("cluster@backend"). With TargetOf it is
// also, or only, a replication target of another configured Cinder backend
// (its replication_device backend_id is BackendID): the DR side of
// Cinder's volume and group replication, which Cinder addresses through
// the primary's service. A DR array is usually both: a backend of the DR
// site's Cinder and the replication_device of the primary's.
//
// A Manila backend is a manila-share backend: Host ("host@backend", a
// replica's host without its pool) and the AvailabilityZone in which
// replicas on it are created (Manila places replicas by zone).
type Backend struct {
	Site    string `yaml:"site" json:"site"`
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	Host    string `yaml:"host,omitempty" json:"host,omitempty"`
	Cluster string `yaml:"cluster,omitempty" json:"cluster,omitempty"`

	TargetOf  string `yaml:"target_of,omitempty" json:"target_of,omitempty"`
	BackendID string `yaml:"backend_id,omitempty" json:"backend_id,omitempty"`

	AvailabilityZone string `yaml:"availability_zone,omitempty" json:"availability_zone,omitempty"`
}

// Services a backend can be.
const (
	ServiceVolume = "volume"
	ServiceShare  = "share"
)

// share says whether the backend is Manila's.
func (b Backend) share() bool { return b.Service == ServiceShare }

// check says what is wrong with one backend's configuration.
func (b Backend) check(all map[string]Backend) error {
	switch b.Service {
	case "", ServiceVolume:
		if b.TargetOf != "" {
			p, ok := all[b.TargetOf]
			if !ok || p.share() || p.TargetOf != "" {
				return fmt.Errorf("target_of %q is not a configured Cinder service backend", b.TargetOf)
			}
			if b.BackendID == "" {
				return fmt.Errorf("a replication target (target_of) needs backend_id")
			}
			if b.Host != "" && b.Cluster != "" {
				return fmt.Errorf("set at most one of host and cluster")
			}
			return nil
		}
		if (b.Host == "") == (b.Cluster == "") {
			return fmt.Errorf("set exactly one of host and cluster")
		}
	case ServiceShare:
		if b.Host == "" || b.AvailabilityZone == "" || b.Cluster != "" || b.TargetOf != "" {
			return fmt.Errorf("a share backend needs host and availability_zone, and no cluster or target_of")
		}
	default:
		return fmt.Errorf("service %q: want volume or share", b.Service)
	}
	return nil
}

// cloudExtras are the clouds.yaml keys gophercloud's clouds.Parse reads
// but does not return: how to authenticate without Keystone, where the
// block-storage endpoint is, and the microversion cap.
type cloudExtras struct {
	AuthType string `yaml:"auth_type"`
	Auth     struct {
		Username  string `yaml:"username"`
		ProjectID string `yaml:"project_id"`
	} `yaml:"auth"`
	RegionName                   string `yaml:"region_name"`
	BlockStorageEndpointOverride string `yaml:"block_storage_endpoint_override"`
	VolumeAPIVersion             string `yaml:"volume_api_version"`
	BlockStorageAPIVersion       string `yaml:"block_storage_api_version"`
	// Raw is the whole cloud entry, for the other services' keys
	// (<service_type>_endpoint_override, <service_type>_api_version).
	Raw map[string]any `yaml:",inline"`
}

// key reads a string key of the cloud entry ("" when absent).
func (ex cloudExtras) key(name string) string {
	if v, ok := ex.Raw[name].(string); ok {
		return v
	}
	if v, ok := ex.Raw[name]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

// cloudsPath finds clouds.yaml the way OpenStack clients do.
func cloudsPath(file string) (string, error) {
	if file != "" {
		return file, nil
	}
	candidates := []string{os.Getenv("OS_CLIENT_CONFIG_FILE"), "clouds.yaml"}
	if home, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "openstack", "clouds.yaml"))
	}
	candidates = append(candidates, "/etc/openstack/clouds.yaml")
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("no clouds.yaml found (looked in %s)", strings.Join(candidates[1:], ", "))
}

// readExtras reads the keys of one cloud that clouds.Parse keeps to itself.
func readExtras(path, cloud string) (cloudExtras, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return cloudExtras{}, err
	}
	var doc struct {
		Clouds map[string]cloudExtras `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return cloudExtras{}, fmt.Errorf("%s: %v", path, err)
	}
	c, ok := doc.Clouds[cloud]
	if !ok {
		return cloudExtras{}, fmt.Errorf("%s has no cloud %q", path, cloud)
	}
	return c, nil
}

// blockStorageClient builds the Cinder v3 client of one site. auth_type
// none (or noauth) is Cinder's own noauth: the token is
// "<username>:<project_id>" and the endpoint comes from
// block_storage_endpoint_override. Anything else goes through Keystone
// with gophercloud's own clouds.yaml reader (password, token and
// application credentials, secure.yaml merged).
func blockStorageClient(ctx context.Context, path string, site Site, timeout time.Duration) (*gophercloud.ServiceClient, cloudExtras, error) {
	ex, err := readExtras(path, site.Cloud)
	if err != nil {
		return nil, ex, err
	}
	httpc := http.Client{Timeout: timeout}
	switch strings.ToLower(ex.AuthType) {
	case "none", "noauth":
		if ex.BlockStorageEndpointOverride == "" || ex.Auth.ProjectID == "" {
			return nil, ex, fmt.Errorf("cloud %q: auth_type %s needs auth.project_id and block_storage_endpoint_override", site.Cloud, ex.AuthType)
		}
		pc, err := noauth.NewClient(gophercloud.AuthOptions{Username: ex.Auth.Username, TenantName: ex.Auth.ProjectID})
		if err != nil {
			return nil, ex, err
		}
		pc.HTTPClient = httpc
		sc, err := noauth.NewBlockStorageNoAuthV3(pc, noauth.EndpointOpts{CinderEndpoint: ex.BlockStorageEndpointOverride})
		return sc, ex, err
	}
	pc, eo, err := keystone(ctx, path, site, httpc)
	if err != nil {
		return nil, ex, err
	}
	sc, err := gcopenstack.NewBlockStorageV3(pc, eo)
	if err != nil {
		return nil, ex, fmt.Errorf("cloud %q: %w", site.Cloud, err)
	}
	if ex.BlockStorageEndpointOverride != "" {
		sc.Endpoint = gophercloud.NormalizeURL(ex.BlockStorageEndpointOverride)
	}
	return sc, ex, nil
}

// LoadConfig reads the adapter's configuration from a YAML file. Unknown
// keys are refused, so a misspelt key is an error, not a silent default.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("openstack config: %w", err)
	}
	defer f.Close()
	var c Config
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("openstack config %s: %w", path, err)
	}
	return c, nil
}
