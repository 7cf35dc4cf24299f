package openstack

// Manila requests gophercloud does not wrap, or wraps wrongly: the one
// place Ferry builds them itself, through gophercloud's ServiceClient
// (auth, retries on 401, errors as gophercloud.ErrUnexpectedResponseCode).
//
//	POST /share-replicas/{id}/action {"promote": {...}}  2.11+ (experimental before 2.56)
//	POST /share-replicas/{id}/action {"resync": null}    2.11+ (experimental before 2.56)
//	GET  /services?binary=manila-share                   2.7+ (/os-services before)
//	GET  /scheduler-stats/pools/detail                   any 2.x
//
// gophercloud's replicas.Promote and replicas.Resync accept only 202, but
// Manila answers 200 (and does nothing) when the replica is already the
// active one; its schedulerstats.ListOpts tags its filters json, not q, so
// they never reach the query, and its pool capabilities lack
// replication_type.

import (
	"context"
	"maps"

	"github.com/gophercloud/gophercloud/v2"
)

// Microversions of the Manila API v2 that Ferry uses, and what for.
var (
	mvShareServices = mv{2, 7}  // GET /services (GET /os-services before)
	mvShareRepl     = mv{2, 11} // share replicas, replicated snapshots, replication_type of shares
	mvShareReplGA   = mv{2, 56} // share replicas without the experimental header
	mvQuiesce       = mv{2, 75} // promote's quiesce_wait_time
)

// manilaAt is a copy of c's client at the highest usable microversion,
// with the experimental header where the replicas API still needs it
// (2.11 to 2.55). The header is harmless on the other calls.
func manilaAt(c *svcClient) *gophercloud.ServiceClient {
	sc := *c.sc
	v := c.ver.usable()
	sc.Microversion = v.String()
	if !v.less(mvShareRepl) && v.less(mvShareReplGA) {
		h := maps.Clone(sc.MoreHeaders)
		if h == nil {
			h = map[string]string{}
		}
		h["X-OpenStack-Manila-API-Experimental"] = "true"
		sc.MoreHeaders = h
	}
	return &sc
}

// replicaAction posts one action on a share replica and returns Manila's
// status code: 202 when it accepted the work, 200 when there was none
// (promote or resync of the active replica).
func replicaAction(ctx context.Context, sc *gophercloud.ServiceClient, id string, body map[string]any) (int, error) {
	resp, err := sc.Post(ctx, sc.ServiceURL("share-replicas", id, "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{200, 202}})
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// shareService is a manila-share service as GET /services shows it.
type shareService struct {
	Binary string `json:"binary"`
	Host   string `json:"host"`
	Zone   string `json:"zone"`
	State  string `json:"state"`
	Status string `json:"status"`
}

// shareServices lists the manila-share services.
func shareServices(ctx context.Context, sc *gophercloud.ServiceClient, v mv) ([]shareService, error) {
	var body struct {
		Services []shareService `json:"services"`
	}
	path := "services"
	if v.less(mvShareServices) {
		path = "os-services"
	}
	_, err := sc.Get(ctx, sc.ServiceURL(path)+"?binary=manila-share", &body, nil)
	return body.Services, err
}

// sharePool is one pool of GET /scheduler-stats/pools/detail, with the
// capabilities Ferry reads.
type sharePool struct {
	Name         string `json:"name"` // host@backend#pool
	Capabilities struct {
		ReplicationType                string `json:"replication_type"`
		ReplicationDomain              string `json:"replication_domain"`
		SnapshotSupport                bool   `json:"snapshot_support"`
		CreateShareFromSnapshotSupport bool   `json:"create_share_from_snapshot_support"`
	} `json:"capabilities"`
}

// sharePools lists every pool the scheduler knows, with its capabilities.
func sharePools(ctx context.Context, sc *gophercloud.ServiceClient) ([]sharePool, error) {
	var body struct {
		Pools []sharePool `json:"pools"`
	}
	_, err := sc.Get(ctx, sc.ServiceURL("scheduler-stats", "pools", "detail"), &body, nil)
	return body.Pools, err
}
