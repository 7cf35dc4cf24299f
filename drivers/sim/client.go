package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

var (
	_ drivers.Storage = (*Client)(nil)
	_ drivers.Compute = (*Client)(nil)
	_ drivers.Network = (*Client)(nil)
	_ drivers.DNS     = (*Client)(nil)
	_ drivers.Verify  = (*Client)(nil)
)

// Client implements the driver ports, and the simulator's control calls,
// over the simulator's HTTP API.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient talks to a simulator at baseURL (e.g. http://127.0.0.1:8090).
// hc may be nil for http.DefaultClient.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), hc: hc}
}

// NewInProcess talks to c without a socket, through the same handler and
// JSON as a remote simulator, so the two cannot drift apart.
func NewInProcess(c *Cloud) *Client {
	return NewClient("http://sim.in-process", &http.Client{Transport: inProcess{h: NewHandler(c)}})
}

// Set returns the client as a full set of drivers.
func (c *Client) Set() drivers.Set {
	return drivers.Set{Storage: c, Replication: c, Host: c, Compute: c, Network: c, DNS: c, Verify: c}
}

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RequestURI = req.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	t.h.ServeHTTP(rec, r)
	// A real transport reports a cancelled request as an error, not as
	// whatever the handler wrote on the way out.
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.code, http.StatusText(rec.code)), StatusCode: rec.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

type recorder struct {
	header      http.Header
	body        bytes.Buffer
	code        int
	wroteHeader bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
}

// do posts q to op's route and decodes the answer into out. Errors come back
// as *drivers.Error with the simulator's kind; failing to reach the
// simulator at all is Unreachable.
func (c *Client) do(ctx context.Context, op string, q request, out any) error {
	body, err := json.Marshal(q)
	if err != nil {
		return drivers.Errorf(drivers.Permanent, op, "encode request: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+routePath(op), bytes.NewReader(body))
	if err != nil {
		return drivers.Errorf(drivers.Permanent, op, "build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return &drivers.Error{Kind: drivers.Unreachable, Op: op, Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return &drivers.Error{Kind: drivers.Unreachable, Op: op, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil && eb.Kind != "" {
			if eb.Op == "" {
				eb.Op = op
			}
			return &drivers.Error{Kind: eb.Kind, Op: eb.Op, Err: errors.New(eb.Message)}
		}
		kind := drivers.Permanent
		if resp.StatusCode >= 500 {
			kind = drivers.Retryable
		}
		return drivers.Errorf(kind, op, "HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return drivers.Errorf(drivers.Retryable, op, "decode response: %v", err)
		}
	}
	return nil
}

func get[T any](ctx context.Context, c *Client, op string, q request) (T, error) {
	var v T
	err := c.do(ctx, op, q, &v)
	return v, err
}

// --- storage ----------------------------------------------------------------

func (c *Client) Capabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	return get[drivers.Capabilities](ctx, c, "storage.capabilities", request{Backend: backend})
}

func (c *Client) BackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	return get[drivers.BackendStatus](ctx, c, "storage.backend_status", request{Backend: backend})
}

func (c *Client) ReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, error) {
	return get[[]drivers.ReplicaStatus](ctx, c, "storage.replication_status", request{Resources: resources})
}

func (c *Client) SnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	return get[drivers.Snapshot](ctx, c, "storage.snapshot_group", request{Key: key, Backend: backend, Resources: resources})
}

func (c *Client) Sync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	return get[[]drivers.ReplicaStatus](ctx, c, "storage.sync", request{Key: key, Backend: backend, Resources: resources})
}

func (c *Client) Demote(ctx context.Context, key, backend string, resources []string) error {
	return c.do(ctx, "storage.demote", request{Key: key, Backend: backend, Resources: resources}, nil)
}

func (c *Client) Promote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	return get[drivers.PromoteResult](ctx, c, "storage.promote", request{Key: key, Backend: backend, Resources: resources, Force: force})
}

func (c *Client) FailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	return c.do(ctx, "storage.failover_completed", request{Key: key, Backend: backend, Member: member, ActiveBackendID: activeBackendID}, nil)
}

func (c *Client) SetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	return c.do(ctx, "storage.set_replication_status", request{Key: key, Backend: backend, Status: status, ActiveBackendID: activeBackendID}, nil)
}

func (c *Client) Freeze(ctx context.Context, key, backend string) error {
	return c.do(ctx, "storage.freeze", request{Key: key, Backend: backend}, nil)
}

func (c *Client) Thaw(ctx context.Context, key, backend string) error {
	return c.do(ctx, "storage.thaw", request{Key: key, Backend: backend}, nil)
}

func (c *Client) Fence(ctx context.Context, key, backend string, epoch int64) error {
	return c.do(ctx, "storage.fence", request{Key: key, Backend: backend, Epoch: epoch}, nil)
}

func (c *Client) Unfence(ctx context.Context, key, backend string, epoch int64) error {
	return c.do(ctx, "storage.unfence", request{Key: key, Backend: backend, Epoch: epoch}, nil)
}

func (c *Client) Resync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	var out drivers.ResyncResult
	err := c.do(ctx, "storage.resync", request{Key: key, Backend: backend, Resources: resources}, &out)
	return out, err
}

func (c *Client) TestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	return get[[]string](ctx, c, "storage.test_failover_start", request{Key: key, Backend: backend, Resources: resources})
}

func (c *Client) TestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	return c.do(ctx, "storage.test_failover_stop", request{Key: key, Backend: backend, Clones: clones}, nil)
}

// --- compute, network, DNS, verify -----------------------------------------

func (c *Client) Quiesce(ctx context.Context, key, site string, servers []string) error {
	return c.do(ctx, "compute.quiesce", request{Key: key, Site: site, Servers: servers}, nil)
}

func (c *Client) Unquiesce(ctx context.Context, key, site string, servers []string) error {
	return c.do(ctx, "compute.unquiesce", request{Key: key, Site: site, Servers: servers}, nil)
}

func (c *Client) Stop(ctx context.Context, key, site string, servers []string) error {
	return c.do(ctx, "compute.stop", request{Key: key, Site: site, Servers: servers}, nil)
}

func (c *Client) Start(ctx context.Context, key, site string, servers []string) error {
	return c.do(ctx, "compute.start", request{Key: key, Site: site, Servers: servers}, nil)
}

func (c *Client) Boot(ctx context.Context, key, site string, servers []drivers.BootSpec) error {
	return c.do(ctx, "compute.boot", request{Key: key, Site: site, Specs: servers}, nil)
}

func (c *Client) Health(ctx context.Context, site string, servers []string) ([]drivers.ServerHealth, error) {
	return get[[]drivers.ServerHealth](ctx, c, "compute.health", request{Site: site, Servers: servers})
}

func (c *Client) MapNetworks(ctx context.Context, key, site string, mappings []drivers.NetworkMapping) error {
	return c.do(ctx, "network.map_networks", request{Key: key, Site: site, Mappings: mappings}, nil)
}

func (c *Client) CreateBubble(ctx context.Context, key, site, name string) (string, error) {
	return get[string](ctx, c, "network.create_bubble", request{Key: key, Site: site, Name: name})
}

func (c *Client) DestroyBubble(ctx context.Context, key, site, id string) error {
	return c.do(ctx, "network.destroy_bubble", request{Key: key, Site: site, ID: id}, nil)
}

func (c *Client) Get(ctx context.Context, name, typ string) (drivers.Record, error) {
	return get[drivers.Record](ctx, c, "dns.get", request{Name: name, Type: typ})
}

func (c *Client) Replace(ctx context.Context, key string, r drivers.Record) error {
	return c.do(ctx, "dns.replace", request{Key: key, Record: r}, nil)
}

func (c *Client) Check(ctx context.Context, site, network string, spec drivers.CheckSpec) (drivers.CheckResult, error) {
	return get[drivers.CheckResult](ctx, c, "verify.check", request{Site: site, Network: network, Check: spec})
}

// --- control ----------------------------------------------------------------

// Write appends n writes to the resource's active replica.
func (c *Client) Write(ctx context.Context, resource string, n int) (int64, error) {
	return get[int64](ctx, c, "sim.write", request{Resource: resource, N: n})
}

// WriteAt appends n writes to the resource's replica at site.
func (c *Client) WriteAt(ctx context.Context, resource, site string, n int) (int64, error) {
	return get[int64](ctx, c, "sim.write", request{Resource: resource, Site: site, N: n})
}

func (c *Client) SetSiteDown(ctx context.Context, site string, down bool) error {
	return c.do(ctx, "sim.set_site_down", request{Site: site, Down: down}, nil)
}

func (c *Client) SetPartition(ctx context.Context, siteA, siteB string, partitioned bool) error {
	return c.do(ctx, "sim.set_partition", request{SiteA: siteA, SiteB: siteB, Partitioned: partitioned}, nil)
}

func (c *Client) SetLag(ctx context.Context, backend string, d time.Duration) error {
	return c.do(ctx, "sim.set_lag", request{Backend: backend, Lag: d}, nil)
}

func (c *Client) InjectFault(ctx context.Context, f Fault) (string, error) {
	return get[string](ctx, c, "sim.inject_fault", request{Fault: f})
}

func (c *Client) ClearFaults(ctx context.Context) error {
	return c.do(ctx, "sim.clear_faults", request{}, nil)
}

func (c *Client) Ledger(ctx context.Context) ([]LedgerEntry, error) {
	return get[[]LedgerEntry](ctx, c, "sim.ledger", request{})
}

func (c *Client) State(ctx context.Context) (State, error) {
	return get[State](ctx, c, "sim.state", request{})
}

func (c *Client) ResourceInfo(ctx context.Context, name string) (ResourceInfo, error) {
	return get[ResourceInfo](ctx, c, "sim.resource_info", request{Resource: name})
}

func (c *Client) LoadInventory(ctx context.Context, inv ferry.Inventory) error {
	return c.do(ctx, "sim.load_inventory", request{Inventory: &inv}, nil)
}
