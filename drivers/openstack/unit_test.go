package openstack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
)

// What a cloud cannot do is said with the microversion it needs and why
// it is not there: the endpoint's maximum, or the operator's cap.
func TestMicroversionNeed(t *testing.T) {
	zed := negotiated{min: mv{3, 0}, max: mv{3, 70}}
	require.NoError(t, zed.need(mvRepl, "failover"))
	require.Equal(t, mv{3, 70}, zed.usable())

	mitaka := negotiated{min: mv{3, 0}, max: mv{3, 0}}
	require.EqualError(t, mitaka.need(mvCluster, "a clustered backend"), "a clustered backend needs Cinder API microversion 3.7; the endpoint supports up to 3.0")

	capped := negotiated{min: mv{3, 0}, max: mv{3, 70}, cap: &mv{3, 20}}
	require.Equal(t, mv{3, 20}, capped.usable())
	require.EqualError(t, capped.need(mvRepl, "failover of a cluster"), "failover of a cluster needs Cinder API microversion 3.26; volume_api_version in clouds.yaml caps it at 3.20 (the endpoint supports up to 3.70)")

	high := negotiated{min: mv{3, 0}, max: mv{3, 27}, cap: &mv{3, 70}}
	require.Equal(t, mv{3, 27}, high.usable(), "a cap above the endpoint's maximum changes nothing")

	v, err := parseMV("3.26")
	require.NoError(t, err)
	require.Equal(t, mvRepl, v)
	_, err = parseMV("3.x")
	require.Error(t, err)
	require.True(t, mv{3, 9}.less(mv{3, 10}), "3.9 < 3.10: minor versions compare as numbers")
}

// A key that succeeded is answered from the ledger, also by a new adapter
// on the same state dir; a failed call is not recorded.
func TestLedger(t *testing.T) {
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	require.NoError(t, os.WriteFile(clouds, []byte("clouds: {}\n"), 0o600))
	cfg := Config{CloudsFile: clouds, Sites: map[string]Site{"a": {Cloud: "x"}}, StateDir: dir}
	a, err := New(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	calls := 0
	fn := func() (int, error) { calls++; return calls, nil }
	v, err := mutate(ctx, a, "storage.freeze", "k", fn)
	require.NoError(t, err)
	require.Equal(t, 1, v)
	v, err = mutate(ctx, a, "storage.freeze", "k", fn)
	require.NoError(t, err)
	require.Equal(t, 1, v)
	require.Equal(t, 1, calls)

	_, err = mutate(ctx, a, "storage.thaw", "k", fn)
	require.True(t, drivers.IsPermanent(err), "a key reused for another op: %v", err)

	_, err = mutate(ctx, a, "storage.freeze", "bad", func() (int, error) { return 0, errors.New("boom") })
	require.Error(t, err)
	v, err = mutate(ctx, a, "storage.freeze", "bad", fn)
	require.NoError(t, err)
	require.Equal(t, 2, v, "a failed key runs again")

	b, err := New(cfg)
	require.NoError(t, err)
	v, err = mutate(ctx, b, "storage.freeze", "k", fn)
	require.NoError(t, err)
	require.Equal(t, 1, v)
	require.Equal(t, 2, calls)
}

// Cinder's refusals are permanent, its overload and conflicts retryable.
func TestClassify(t *testing.T) {
	ctx := context.Background()
	for code, kind := range map[int]string{400: drivers.Permanent, 403: drivers.Permanent, 404: drivers.Permanent, 409: drivers.Retryable, 429: drivers.Retryable, 500: drivers.Retryable, 503: drivers.Retryable} {
		err := classify(ctx, "op", gophercloud.ErrUnexpectedResponseCode{Actual: code})
		require.Equal(t, kind, drivers.Kind(err), "HTTP %d", code)
	}
}

func TestOverrideEndpoint(t *testing.T) {
	for _, c := range []struct {
		svc            serviceType
		override, base string
	}{
		{svcNetwork, "http://h:9696", "http://h:9696/v2.0/"},
		{svcNetwork, "http://h:9696/v2.0", "http://h:9696/v2.0/"},
		{svcDNS, "http://h:9001/", "http://h:9001/v2/"},
		{svcDNS, "http://h/dns/v2/", "http://h/dns/v2/"},
		{svcCompute, "http://h:8774/v2.1", ""},
		{svcShare, "http://h:8786/v2", ""},
	} {
		sc := &gophercloud.ServiceClient{ResourceBase: "http://catalog/stale/"}
		overrideEndpoint(sc, c.svc, c.override)
		require.Equal(t, c.base, sc.ResourceBase, "%s %s", c.svc, c.override)
		require.True(t, strings.HasSuffix(sc.Endpoint, "/"))
	}
}
