package openstack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/ferrydr/ferry/drivers"
)

// serviceType is an OpenStack service Ferry talks to, by its service-types
// authority name (the catalog type and the clouds.yaml key prefix, with
// dashes as underscores).
type serviceType string

const (
	svcShare   serviceType = "shared-file-system" // Manila v2
	svcCompute serviceType = "compute"            // Nova v2.1
	svcNetwork serviceType = "network"            // Neutron v2.0
	svcDNS     serviceType = "dns"                // Designate v2
)

// svcClient is one site's client of one service, with the microversions
// its endpoint supports (zero for APIs without microversions).
type svcClient struct {
	sc  *gophercloud.ServiceClient
	ver negotiated
}

// microversioned says which services negotiate, with their major version,
// their name in messages and the clouds.yaml key that caps them.
var microversioned = map[serviceType]struct {
	major           int
	service, capKey string
}{
	svcShare:   {2, "Manila", "shared_file_system_api_version"},
	svcCompute: {2, "Nova", "compute_api_version"},
}

// client returns a site's client of svc, building it and negotiating its
// microversion on first use. Like site, it calls nothing until asked, so a
// site that is down does not stop the others.
func (a *Adapter) client(ctx context.Context, op, site string, svc serviceType) (*svcClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := site + "/" + string(svc)
	if c, ok := a.clients[key]; ok {
		return c, nil
	}
	cfg, ok := a.cfg.Sites[site]
	if !ok {
		return nil, drivers.Errorf(drivers.Permanent, op, "unknown site %q", site)
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	sc, ex, err := serviceClient(ctx, a.clouds, cfg, svc, a.cfg.Timeout)
	if err != nil {
		return nil, classify(outer, op, fmt.Errorf("site %s: %s: %w", site, svc, err))
	}
	c := &svcClient{sc: sc}
	if m, ok := microversioned[svc]; ok {
		c.ver, err = discoverMajor(ctx, sc, m.major, ex.key(m.capKey), m.service, m.capKey)
		if err != nil {
			return nil, classify(outer, op, fmt.Errorf("site %s: read the %s API versions: %w", site, m.service, err))
		}
	}
	a.clients[key] = c
	return c, nil
}

// serviceClient builds one site's client of svc. auth_type none (or
// noauth) is the services' own noauth: the token is
// "<username>:<project_id>" and the endpoint comes from
// <service_type>_endpoint_override (Manila's, Nova's and Neutron's noauth
// read the same token). Anything else authenticates with Keystone through
// gophercloud's clouds.yaml reader and finds the endpoint in the catalog;
// an endpoint override still wins, as in the openstack client.
func serviceClient(ctx context.Context, path string, site Site, svc serviceType, timeout time.Duration) (*gophercloud.ServiceClient, cloudExtras, error) {
	ex, err := readExtras(path, site.Cloud)
	if err != nil {
		return nil, ex, err
	}
	override := ex.key(strings.ReplaceAll(string(svc), "-", "_") + "_endpoint_override")
	httpc := http.Client{Timeout: timeout}
	switch strings.ToLower(ex.AuthType) {
	case "none", "noauth":
		if override == "" || ex.Auth.ProjectID == "" {
			return nil, ex, fmt.Errorf("cloud %q: auth_type %s needs auth.project_id and %s_endpoint_override", site.Cloud, ex.AuthType, strings.ReplaceAll(string(svc), "-", "_"))
		}
		user := ex.Auth.Username
		if user == "" {
			user = "admin"
		}
		pc := &gophercloud.ProviderClient{HTTPClient: httpc}
		pc.SetToken(user + ":" + ex.Auth.ProjectID)
		sc := &gophercloud.ServiceClient{ProviderClient: pc, Type: string(svc)}
		overrideEndpoint(sc, svc, override)
		if svc == svcDNS {
			// Designate's noauth ignores the token: it takes the project
			// from X-Auth-Project-ID and puts requests without it in
			// "noauth-project", where the operator's zones are not.
			sc.MoreHeaders = map[string]string{"X-Auth-Project-ID": ex.Auth.ProjectID}
		}
		return sc, ex, nil
	}
	pc, eo, err := keystone(ctx, path, site, httpc)
	if err != nil {
		return nil, ex, err
	}
	var sc *gophercloud.ServiceClient
	switch svc {
	case svcShare:
		sc, err = gcopenstack.NewSharedFileSystemV2(pc, eo)
	case svcCompute:
		sc, err = gcopenstack.NewComputeV2(pc, eo)
	case svcNetwork:
		sc, err = gcopenstack.NewNetworkV2(pc, eo)
	case svcDNS:
		sc, err = gcopenstack.NewDNSV2(pc, eo)
	default:
		return nil, ex, fmt.Errorf("unknown service %s", svc)
	}
	if err != nil {
		return nil, ex, fmt.Errorf("cloud %q: %w", site.Cloud, err)
	}
	if override != "" {
		overrideEndpoint(sc, svc, override)
	}
	return sc, ex, nil
}

// keystone authenticates a site's cloud with Keystone through gophercloud's
// own clouds.yaml reader (password, token and application credentials,
// secure.yaml merged; the site's region overrides region_name) and returns
// the provider and the endpoint options for the catalog.
func keystone(ctx context.Context, path string, site Site, httpc http.Client) (*gophercloud.ProviderClient, gophercloud.EndpointOpts, error) {
	opts := []clouds.ParseOption{clouds.WithCloudName(site.Cloud), clouds.WithLocations(path)}
	if site.Region != "" {
		opts = append(opts, clouds.WithRegion(site.Region))
	}
	ao, eo, tlsConfig, err := clouds.Parse(opts...)
	if err != nil {
		return nil, eo, fmt.Errorf("cloud %q: %v", site.Cloud, err)
	}
	pc, err := gcopenstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, eo, err
	}
	if tlsConfig != nil {
		httpc.Transport = &http.Transport{TLSClientConfig: tlsConfig}
	}
	pc.HTTPClient = httpc
	ao.AllowReauth = true
	if err := gcopenstack.Authenticate(ctx, pc, ao); err != nil {
		return nil, eo, fmt.Errorf("cloud %q: authenticate: %w", site.Cloud, err)
	}
	return pc, eo, nil
}

// apiVersionPath is the version path gophercloud appends to the catalog
// endpoint of the services whose catalog entry has none (Neutron lists
// http://host:9696, Designate http://host:9001).
var apiVersionPath = map[serviceType]string{svcNetwork: "v2.0/", svcDNS: "v2/"}

// overrideEndpoint points sc at an endpoint override. An override may be
// given with or without the version path, as the catalog would list it or
// as a browser would show the API; either way the requests go to the
// versioned base (gophercloud builds them on ResourceBase when it is set,
// so a stale one from the catalog must not survive the override).
func overrideEndpoint(sc *gophercloud.ServiceClient, svc serviceType, override string) {
	sc.Endpoint = gophercloud.NormalizeURL(override)
	sc.ResourceBase = ""
	if v, ok := apiVersionPath[svc]; ok {
		if strings.HasSuffix(sc.Endpoint, "/"+v) {
			sc.ResourceBase = sc.Endpoint
		} else {
			sc.ResourceBase = sc.Endpoint + v
		}
	}
}
