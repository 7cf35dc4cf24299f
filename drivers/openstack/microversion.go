package openstack

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
)

// Microversions of the Cinder API v3 that Ferry uses, and what for.
var (
	mvBase      = mv{3, 0}  // services, volumes, failover_host, freeze, thaw of a host
	mvCluster   = mv{3, 7}  // clusters, and the cluster of each service
	mvRepl      = mv{3, 26} // failover of a cluster; freeze and thaw of a cluster; replication fields of clusters
	mvGroups    = mv{3, 14} // generic volume groups (3.13: group_id of volumes) and group snapshots, create-from-src
	mvGroupRepl = mv{3, 38} // group replication: enable, disable, failover_replication, list_replication_targets
)

// mv is a microversion, major.minor.
type mv struct{ major, minor int }

func (v mv) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

func (v mv) less(o mv) bool { return v.major < o.major || (v.major == o.major && v.minor < o.minor) }

func parseMV(s string) (mv, error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ".")
	a, err1 := strconv.Atoi(maj)
	b := 0
	var err2 error
	if ok {
		b, err2 = strconv.Atoi(min)
	}
	if err1 != nil || err2 != nil {
		return mv{}, fmt.Errorf("bad microversion %q", s)
	}
	return mv{a, b}, nil
}

// negotiated is what one service endpoint of a site supports, and the cap
// the operator set (<service>_api_version in clouds.yaml, as for the
// openstack client: volume_api_version, shared_file_system_api_version,
// compute_api_version).
type negotiated struct {
	min, max mv
	cap      *mv
	// service names the API in messages ("Cinder", "Manila", "Nova");
	// capKey the clouds.yaml key that capped it. Empty means Cinder's.
	service, capKey string
}

// usable is the highest microversion Ferry sends to this endpoint.
func (n negotiated) usable() mv {
	if n.cap != nil && n.cap.less(n.max) {
		return *n.cap
	}
	return n.max
}

// need says whether what needs microversion v can be done, and if not,
// exactly why.
func (n negotiated) need(v mv, what string) error {
	if !n.usable().less(v) {
		return nil
	}
	service, capKey := n.service, n.capKey
	if service == "" {
		service, capKey = "Cinder", "volume_api_version"
	}
	why := fmt.Sprintf("the endpoint supports up to %s", n.max)
	if n.cap != nil && n.cap.less(n.max) {
		why = fmt.Sprintf("%s in clouds.yaml caps it at %s (the endpoint supports up to %s)", capKey, n.cap, n.max)
	}
	return fmt.Errorf("%s needs %s API microversion %s; %s", what, service, v, why)
}

// discoverMajor is discover for any microversioned API: it reads the
// versions document at the endpoint's root and picks the entry of the
// given major version (Manila 2, Nova 2).
func discoverMajor(ctx context.Context, sc *gophercloud.ServiceClient, major int, capStr, service, capKey string) (negotiated, error) {
	n := negotiated{service: service, capKey: capKey}
	if capStr != "" && strings.Contains(capStr, ".") {
		c, err := parseMV(capStr)
		if err != nil {
			return n, fmt.Errorf("%s: %v", capKey, err)
		}
		n.cap = &c
	}
	root, err := utils.BaseEndpoint(sc.Endpoint)
	if err != nil {
		return n, err
	}
	versions, err := utils.GetServiceVersions(ctx, sc.ProviderClient, root, true)
	if err != nil {
		return n, err
	}
	for _, v := range versions {
		if v.Major != major || v.MaxMajor == 0 {
			continue
		}
		n.min, n.max = mv{v.MinMajor, v.MinMinor}, mv{v.MaxMajor, v.MaxMinor}
		return n, nil
	}
	for _, v := range versions {
		if v.Major == major {
			n.min, n.max = mv{major, v.Minor}, mv{major, v.Minor}
			return n, nil
		}
	}
	return n, fmt.Errorf("the endpoint offers no %s API v%d (versions: %+v)", service, major, versions)
}

// discover reads the versions document at the endpoint's root (GET /, no
// auth needed) and picks the v3 entry.
func discover(ctx context.Context, sc *gophercloud.ServiceClient, capStr string) (negotiated, error) {
	var n negotiated
	if capStr != "" && strings.Contains(capStr, ".") {
		c, err := parseMV(capStr)
		if err != nil {
			return n, fmt.Errorf("volume_api_version: %v", err)
		}
		n.cap = &c
	}
	root, err := utils.BaseEndpoint(sc.Endpoint)
	if err != nil {
		return n, err
	}
	versions, err := utils.GetServiceVersions(ctx, sc.ProviderClient, root, true)
	if err != nil {
		return n, err
	}
	for _, v := range versions {
		if v.Major != 3 {
			continue
		}
		if v.MaxMajor == 0 {
			// A v3 without microversions is 3.0 only (Ocata's API
			// before microversions were advertised).
			n.min, n.max = mv{3, 0}, mv{3, 0}
			return n, nil
		}
		n.min, n.max = mv{v.MinMajor, v.MinMinor}, mv{v.MaxMajor, v.MaxMinor}
		return n, nil
	}
	return n, fmt.Errorf("the endpoint offers no block-storage API v3 (versions: %+v)", versions)
}
