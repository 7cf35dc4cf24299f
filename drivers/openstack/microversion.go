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
	mvBase    = mv{3, 0}  // services, volumes, failover_host, freeze, thaw of a host
	mvCluster = mv{3, 7}  // clusters, and the cluster of each service
	mvRepl    = mv{3, 26} // failover of a cluster; freeze and thaw of a cluster; replication fields of clusters
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

// negotiated is what a site's Cinder supports, and the cap the operator set
// (volume_api_version in clouds.yaml, as for the openstack client).
type negotiated struct {
	min, max mv
	cap      *mv
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
	why := fmt.Sprintf("the endpoint supports up to %s", n.max)
	if n.cap != nil && n.cap.less(n.max) {
		why = fmt.Sprintf("volume_api_version in clouds.yaml caps it at %s (the endpoint supports up to %s)", n.cap, n.max)
	}
	return fmt.Errorf("%s needs Cinder API microversion %s; %s", what, v, why)
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
