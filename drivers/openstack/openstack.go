// Package openstack is Ferry's OpenStack adapter, on gophercloud v2. This
// part is Cinder's backend replication: the services and clusters of
// cinder-volume with their replication_status, active_backend_id and
// frozen; failover_host, the cluster failover (3.26+), freeze and thaw; and
// the replication_status of volumes. It implements drivers.Storage (the
// calls Cinder has; the rest say so) and drivers.HostFailover.
//
// Configuration is the operator's own clouds.yaml: one cloud, or one
// region of a cloud, per site. The adapter holds the credentials; workflow
// inputs name backends only.
package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ferrydr/ferry/drivers"
)

// Adapter talks to the Cinder of every configured site.
type Adapter struct {
	cfg    Config
	clouds string // the clouds.yaml path

	mu      sync.Mutex             // guards sites and clients
	sites   map[string]*siteClient // Cinder's, by site
	clients map[string]*svcClient  // the other services', by "site/service"

	lmu      sync.Mutex // guards ledger and inflight
	ledger   map[string]ledgerEntry
	inflight map[string]bool
}

type siteClient struct {
	name string
	sc   *gophercloud.ServiceClient
	ver  negotiated
}

type ledgerEntry struct {
	Op     string          `json:"op"`
	Result json.RawMessage `json:"result"`
}

var (
	_ drivers.Storage      = (*Adapter)(nil)
	_ drivers.HostFailover = (*Adapter)(nil)
)

// New checks the configuration and opens the ledger. It does not call any
// cloud: a site that is down must not stop the adapter from serving the
// others. Clients are built, and microversions negotiated, on first use.
func New(cfg Config) (*Adapter, error) {
	const op = "openstack.new"
	if len(cfg.Sites) == 0 || cfg.StateDir == "" {
		return nil, drivers.Errorf(drivers.Permanent, op, "at least one site and a state dir are required")
	}
	for name, b := range cfg.Backends {
		if _, ok := cfg.Sites[b.Site]; !ok {
			return nil, drivers.Errorf(drivers.Permanent, op, "backend %s: unknown site %q", name, b.Site)
		}
		if err := b.check(cfg.Backends); err != nil {
			return nil, drivers.Errorf(drivers.Permanent, op, "backend %s: %v", name, err)
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.SettleTimeout == 0 {
		cfg.SettleTimeout = 5 * time.Minute
	}
	path, err := cloudsPath(cfg.CloudsFile)
	if err != nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "%v", err)
	}
	a := &Adapter{cfg: cfg, clouds: path, sites: map[string]*siteClient{}, clients: map[string]*svcClient{}, ledger: map[string]ledgerEntry{}, inflight: map[string]bool{}}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, drivers.Errorf(drivers.Permanent, op, "state dir: %v", err)
	}
	data, err := os.ReadFile(a.ledgerPath())
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &a.ledger); err != nil {
			return nil, drivers.Errorf(drivers.Permanent, op, "ledger %s: %v", a.ledgerPath(), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, drivers.Errorf(drivers.Permanent, op, "ledger: %v", err)
	}
	return a, nil
}

func (a *Adapter) ledgerPath() string { return filepath.Join(a.cfg.StateDir, "openstack-ledger.json") }

// site returns a site's client, building it and negotiating the
// microversion on first use.
func (a *Adapter) site(ctx context.Context, op, name string) (*siteClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.sites[name]; ok {
		return s, nil
	}
	cfg, ok := a.cfg.Sites[name]
	if !ok {
		return nil, drivers.Errorf(drivers.Permanent, op, "unknown site %q", name)
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	sc, ex, err := blockStorageClient(ctx, a.clouds, cfg, a.cfg.Timeout)
	if err != nil {
		return nil, classify(outer, op, fmt.Errorf("site %s: %w", name, err))
	}
	capStr := ex.VolumeAPIVersion
	if ex.BlockStorageAPIVersion != "" {
		capStr = ex.BlockStorageAPIVersion
	}
	ver, err := discover(ctx, sc, capStr)
	if err != nil {
		return nil, classify(outer, op, fmt.Errorf("site %s: read the API versions: %w", name, err))
	}
	s := &siteClient{name: name, sc: sc, ver: ver}
	a.sites[name] = s
	return s, nil
}

// Microversions reports, per site, the microversion range the endpoint
// supports and the highest one Ferry will use, so an operator learns at
// once what an older cloud cannot do.
func (a *Adapter) Microversions(ctx context.Context, siteName string) (minV, maxV, usable string, err error) {
	s, err := a.site(ctx, "openstack.microversions", siteName)
	if err != nil {
		return "", "", "", err
	}
	return s.ver.min.String(), s.ver.max.String(), s.ver.usable().String(), nil
}

// mutate runs a mutating call once per idempotency key: a key that
// succeeded before returns its first result and applies nothing; a key
// still in flight is refused (Retryable) rather than run twice at once.
// Calls with different keys run concurrently: a failover that waits for
// Cinder does not hold up the members' checks or other backends.
func mutate[T any](ctx context.Context, a *Adapter, op, key string, fn func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
	}
	if key != "" {
		a.lmu.Lock()
		if e, ok := a.ledger[key]; ok {
			a.lmu.Unlock()
			if e.Op != op {
				return zero, drivers.Errorf(drivers.Permanent, op, "idempotency key %q was already used for %s", key, e.Op)
			}
			var v T
			if err := json.Unmarshal(e.Result, &v); err != nil {
				return zero, drivers.Errorf(drivers.Permanent, op, "ledger entry %q: %v", key, err)
			}
			return v, nil
		}
		if a.inflight[key] {
			a.lmu.Unlock()
			return zero, drivers.Errorf(drivers.Retryable, op, "a call with idempotency key %q is still running", key)
		}
		a.inflight[key] = true
		a.lmu.Unlock()
		defer func() {
			a.lmu.Lock()
			delete(a.inflight, key)
			a.lmu.Unlock()
		}()
	}
	v, err := fn()
	if err != nil {
		return zero, classify(ctx, op, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return zero, drivers.Errorf(drivers.Permanent, op, "encode result: %v", err)
	}
	if key != "" {
		a.lmu.Lock()
		a.ledger[key] = ledgerEntry{Op: op, Result: raw}
		err := a.saveLedger()
		a.lmu.Unlock()
		if err != nil {
			return zero, drivers.Errorf(drivers.Retryable, op, "%v", err)
		}
	}
	// Answer what a replay will answer: the result as the ledger keeps it.
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		return zero, drivers.Errorf(drivers.Permanent, op, "decode result: %v", err)
	}
	return out, nil
}

// saveLedger writes the ledger; the caller holds lmu.
func (a *Adapter) saveLedger() error {
	data, err := json.MarshalIndent(a.ledger, "", " ")
	if err != nil {
		return err
	}
	tmp := a.ledgerPath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return os.Rename(tmp, a.ledgerPath())
}

// classify turns an error into a *drivers.Error: a typed error is kept;
// no answer from the endpoint is Unreachable; Cinder's 4xx refusals are
// Permanent (429 and 409 excepted: a later try may pass), its 5xx and the
// caller's own deadline Retryable.
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var de *drivers.Error
	if errors.As(err, &de) {
		return err
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		switch {
		case code.Actual == 409 || code.Actual == 429 || code.Actual == 408:
			return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
		case code.Actual >= 400 && code.Actual < 500:
			return &drivers.Error{Kind: drivers.Permanent, Op: op, Err: err}
		default:
			return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
		}
	}
	if ctx.Err() != nil {
		return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return &drivers.Error{Kind: drivers.Unreachable, Op: op, Err: err}
	}
	return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
}
