package openstack

// Cinder's replication actions on services and its clusters API, which
// gophercloud does not wrap: the one place Ferry builds these requests
// itself, through gophercloud's ServiceClient (auth, retries on 401,
// errors as gophercloud.ErrUnexpectedResponseCode).
//
//	PUT /os-services/failover_host {"host", "backend_id"}      any 3.x
//	PUT /os-services/failover      {"cluster"|"host", ...}      3.26+
//	PUT /os-services/freeze|thaw   {"host"} ({"cluster"} 3.26+)
//	GET /clusters/detail?name=&binary=cinder-volume             3.7+ (replication fields 3.26+)
//	GET /os-services?binary=cinder-volume                       cluster field 3.7+

import (
	"context"
	"net/url"

	"github.com/gophercloud/gophercloud/v2"
)

// service is a cinder-volume service as GET /os-services shows it.
type service struct {
	Binary            string  `json:"binary"`
	Host              string  `json:"host"`
	State             string  `json:"state"`
	Status            string  `json:"status"`
	Cluster           *string `json:"cluster"`
	ReplicationStatus string  `json:"replication_status"`
	ActiveBackendID   *string `json:"active_backend_id"`
	Frozen            bool    `json:"frozen"`
	DisabledReason    *string `json:"disabled_reason"`
}

// cluster is a cinder-volume cluster as GET /clusters/detail shows it.
type cluster struct {
	Name              string  `json:"name"`
	Binary            string  `json:"binary"`
	State             string  `json:"state"`
	Status            string  `json:"status"`
	NumHosts          int     `json:"num_hosts"`
	NumDownHosts      int     `json:"num_down_hosts"`
	ReplicationStatus string  `json:"replication_status"`
	ActiveBackendID   *string `json:"active_backend_id"`
	Frozen            bool    `json:"frozen"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func at(sc *gophercloud.ServiceClient, v mv) *gophercloud.ServiceClient {
	c := *sc
	c.Microversion = v.String()
	return &c
}

// volumeServices lists the cinder-volume services.
func volumeServices(ctx context.Context, sc *gophercloud.ServiceClient, v mv) ([]service, error) {
	var body struct {
		Services []service `json:"services"`
	}
	c := at(sc, v)
	_, err := c.Get(ctx, c.ServiceURL("os-services")+"?binary=cinder-volume", &body, nil)
	return body.Services, err
}

// clusterDetail reads one cinder-volume cluster (nil if there is none).
func clusterDetail(ctx context.Context, sc *gophercloud.ServiceClient, v mv, name string) (*cluster, error) {
	var body struct {
		Clusters []cluster `json:"clusters"`
	}
	c := at(sc, v)
	q := url.Values{"name": {name}, "binary": {"cinder-volume"}}
	if _, err := c.Get(ctx, c.ServiceURL("clusters", "detail")+"?"+q.Encode(), &body, nil); err != nil {
		return nil, err
	}
	for i := range body.Clusters {
		if body.Clusters[i].Name == name {
			return &body.Clusters[i], nil
		}
	}
	return nil, nil
}

// serviceAction sends PUT /os-services/<action>: failover_host, failover,
// freeze or thaw. Cinder answers failover and failover_host with 202
// (accepted: the work and its errors happen in cinder-volume), freeze and
// thaw with 200 once the volume service has done them.
func serviceAction(ctx context.Context, sc *gophercloud.ServiceClient, v mv, action string, body map[string]any) error {
	c := at(sc, v)
	_, err := c.Put(ctx, c.ServiceURL("os-services", action), body, nil, &gophercloud.RequestOpts{OkCodes: []int{200, 202}})
	return err
}
