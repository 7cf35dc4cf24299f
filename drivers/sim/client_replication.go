package sim

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.Replication = (*Client)(nil)

func (c *Client) EnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	return c.do(ctx, "storage.enable_replication", request{Key: key, Backend: backend, Target: target, Resources: resources}, nil)
}

func (c *Client) DisableReplication(ctx context.Context, key, target string, resources []string) error {
	return c.do(ctx, "storage.disable_replication", request{Key: key, Target: target, Resources: resources}, nil)
}

func (c *Client) SuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	return c.do(ctx, "storage.suspend_replication", request{Key: key, Backend: backend, Resources: resources}, nil)
}

func (c *Client) ResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	return c.do(ctx, "storage.resume_replication", request{Key: key, Backend: backend, Resources: resources}, nil)
}
