package sim

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.HostFailover = (*Client)(nil)

// FailoverHost fails a whole backend over to the replication target named
// by targetID ("default" fails back).
func (c *Client) FailoverHost(ctx context.Context, key, backend, targetID string) (drivers.HostFailoverResult, error) {
	return get[drivers.HostFailoverResult](ctx, c, "storage.failover_host", request{Key: key, Backend: backend, Target: targetID})
}

// CreateVolume adds a volume of a non-replicated type on backend, outside
// any protection group.
func (c *Client) CreateVolume(ctx context.Context, name, backend string) error {
	return c.do(ctx, "sim.create_volume", request{Resource: name, Backend: backend}, nil)
}
