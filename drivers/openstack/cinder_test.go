package openstack_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/openstack"
	"github.com/ferrydr/ferry/drivers/openstack/openstacktest"
)

// Every test here runs against real Cinder (Debian's cinder-api,
// cinder-scheduler and three cinder-volume services, two of them one
// active-active cluster) with the replication-capable fake driver in
// openstacktest/testdata. One Cinder serves all subtests: it takes about a
// minute to start on a loaded machine.
func TestCinder(t *testing.T) {
	c := openstacktest.StartCinder(t, openstacktest.CinderOptions{})
	solo, cl := c.Hosts[0], c.ClusterName
	a := newAdapter(t, c, "")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// Volumes: a replicated and a plain one on the standalone backend, a
	// replicated one on the cluster.
	replSolo := makeVolume(ctx, t, c, "repl-solo", openstacktest.BackendName(solo), true)
	plainSolo := makeVolume(ctx, t, c, "plain-solo", openstacktest.BackendName(solo), false)
	replCl := makeVolume(ctx, t, c, "repl-cl", openstacktest.BackendName(cl), true)

	t.Run("status as Cinder reports it", func(t *testing.T) {
		st, err := a.BackendStatus(ctx, "solo")
		require.NoError(t, err)
		require.Equal(t, drivers.BackendStatus{Backend: "solo", Site: "site-a", Reachable: true, ReplicationStatus: ferry.ReplicationEnabled,
			Members: []drivers.MemberStatus{{Name: solo, Up: true}}}, st)
		st, err = a.BackendStatus(ctx, "cl")
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicationEnabled, st.ReplicationStatus)
		require.Equal(t, []drivers.MemberStatus{{Name: c.MemberHosts[0], Up: true}, {Name: c.MemberHosts[1], Up: true}}, st.Members)
		caps, err := a.Capabilities(ctx, "cl")
		require.NoError(t, err)
		require.Equal(t, drivers.Capabilities{Replication: true, Freeze: true, ConsistencyGroup: true, TestFailover: true}, caps)

		vols, err := a.Volumes(ctx, []string{replSolo, plainSolo, replCl})
		require.NoError(t, err)
		got := map[string]string{}
		for _, v := range vols {
			got[v.Name] = v.Backend + " " + v.Status + " " + v.ReplicationStatus
		}
		require.Equal(t, map[string]string{
			replSolo:  "solo available enabled",
			plainSolo: "solo available disabled",
			replCl:    "cl available enabled",
		}, got)
	})

	t.Run("failover_host and back on a single service", func(t *testing.T) {
		require.NoError(t, a.Freeze(ctx, "k1/freeze", "solo"))
		st, err := a.BackendStatus(ctx, "solo")
		require.NoError(t, err)
		require.True(t, st.Frozen)
		svc := service(ctx, t, c, solo)
		require.Equal(t, "disabled", svc.Status, "Cinder disables a frozen service")

		// Real Cinder: a frozen backend still accepts extend (202, "Extend
		// volume request issued successfully"). A freeze is no fence:
		// recorded here so nobody mistakes one for the other.
		vols, err := a.Volumes(ctx, []string{plainSolo})
		require.NoError(t, err)
		code, err := c.Do(ctx, http.MethodPost, "/volumes/"+vols[0].ID+"/action", "", map[string]any{"os-extend": map[string]any{"new_size": 2}}, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code)
		var size int
		var status string
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			var v struct {
				Volume struct {
					Size   int    `json:"size"`
					Status string `json:"status"`
				} `json:"volume"`
			}
			_, err := c.Do(ctx, http.MethodGet, "/volumes/"+vols[0].ID, "", nil, &v)
			require.NoError(t, err)
			size, status = v.Volume.Size, v.Volume.Status
			if status != "extending" {
				break
			}
		}
		// ...and then does nothing: the scheduler finds no enabled backend
		// (a freeze disables the service) and the volume stays as it was.
		require.Equal(t, []any{1, "available"}, []any{size, status}, "a 202 for extend on a frozen backend, and no extend")
		require.True(t, c.Grep("Failed to schedule_extend_volume"), "the scheduler says why")

		res, err := a.FailoverHost(ctx, "k1/failover", "solo", "dr1")
		require.NoError(t, err)
		require.Equal(t, []string{replSolo}, promoted(res))
		require.Equal(t, []string{plainSolo}, res.Errored, "Cinder puts a volume that is not replicated in error")

		st, err = a.BackendStatus(ctx, "solo")
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicationFailedOver, st.ReplicationStatus)
		require.Equal(t, "dr1", st.ActiveBackendID)
		require.True(t, st.Frozen, "failing over leaves the freeze in place")
		require.Equal(t, map[string]string{replSolo: "available failed-over", plainSolo: "error not-capable"}, volumeStates(ctx, t, a, replSolo, plainSolo))
		// Cinder shows the failed-over volume; the configured target is
		// where it is active now, and the service's copy falls behind.
		require.Equal(t, map[string]string{replSolo + "@solo-dr": ferry.ReplicaActive, replSolo + "@solo": ferry.ReplicaOutOfSync, plainSolo + "@solo": ferry.ReplicaError}, replicaMap(ctx, t, a, replSolo, plainSolo))

		require.NoError(t, a.FailoverCompleted(ctx, "k1/completed", "solo", solo, "dr1"))
		require.NoError(t, a.SetReplicationStatus(ctx, "k1/status", "solo", ferry.ReplicationFailedOver, "dr1"))
		err = a.SetReplicationStatus(ctx, "k1/status-wrong", "solo", ferry.ReplicationEnabled, "")
		require.Error(t, err, "Cinder's bookkeeping cannot be written: a mismatch is an error")
		require.True(t, drivers.IsPermanent(err))
		require.NoError(t, a.Thaw(ctx, "k1/thaw", "solo"))
		st, err = a.BackendStatus(ctx, "solo")
		require.NoError(t, err)
		require.False(t, st.Frozen)

		// The same key again applies nothing and answers as the first time.
		again, err := a.FailoverHost(ctx, "k1/failover", "solo", "dr1")
		require.NoError(t, err)
		require.Equal(t, promoted(res), promoted(again))

		res, err = a.FailoverHost(ctx, "k2/failback", "solo", "default")
		require.NoError(t, err)
		require.Equal(t, []string{replSolo}, promoted(res))
		st, err = a.BackendStatus(ctx, "solo")
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicationEnabled, st.ReplicationStatus)
		require.Equal(t, "", st.ActiveBackendID)
		require.NoError(t, a.FailoverCompleted(ctx, "k2/completed", "solo", solo, "default"))
		// Failing back leaves the volumes Cinder errored as they are.
		require.Equal(t, map[string]string{replSolo: "available enabled", plainSolo: "error not-capable"}, volumeStates(ctx, t, a, replSolo, plainSolo))
		require.Equal(t, map[string]string{replSolo + "@solo": ferry.ReplicaActive, replSolo + "@solo-dr": ferry.ReplicaInSync, plainSolo + "@solo": ferry.ReplicaError}, replicaMap(ctx, t, a, replSolo, plainSolo))
	})

	t.Run("failover and back on a two-member cluster", func(t *testing.T) {
		require.NoError(t, a.Freeze(ctx, "k3/freeze", "cl"))
		for _, m := range c.MemberHosts {
			require.True(t, service(ctx, t, c, m).Frozen, "freezing the cluster freezes %s", m)
		}
		res, err := a.FailoverHost(ctx, "k3/failover", "cl", "dr1")
		require.NoError(t, err)
		require.Equal(t, []string{replCl}, promoted(res))
		// Cinder sends failover_completed to every member itself; each
		// member's active_backend_id is checked.
		for _, m := range c.MemberHosts {
			require.NoError(t, a.FailoverCompleted(ctx, "k3/completed/"+m, "cl", m, "dr1"))
		}
		st, err := a.BackendStatus(ctx, "cl")
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicationFailedOver, st.ReplicationStatus)
		require.Equal(t, "dr1", st.ActiveBackendID)
		for _, m := range st.Members {
			require.Equal(t, "dr1", m.ActiveBackendID, m.Name)
		}
		require.Equal(t, map[string]string{replCl: "available failed-over"}, volumeStates(ctx, t, a, replCl))
		err = a.FailoverCompleted(ctx, "k3/completed/stranger", "cl", solo, "dr1")
		require.Error(t, err)
		require.True(t, drivers.IsPermanent(err), "%s is not a member of the cluster", solo)
		require.NoError(t, a.Thaw(ctx, "k3/thaw", "cl"))

		_, err = a.FailoverHost(ctx, "k4/failback", "cl", "default")
		require.NoError(t, err)
		for _, m := range c.MemberHosts {
			require.NoError(t, a.FailoverCompleted(ctx, "k4/completed/"+m, "cl", m, "default"))
			require.Equal(t, ferry.ReplicationEnabled, service(ctx, t, c, m).ReplicationStatus)
		}
		require.Equal(t, map[string]string{replCl: "available enabled"}, volumeStates(ctx, t, a, replCl))
	})

	t.Run("an unknown backend_id is an error, though Cinder answers 202", func(t *testing.T) {
		before := service(ctx, t, c, solo)
		code, err := c.Do(ctx, http.MethodPut, "/os-services/failover_host", "", map[string]string{"host": solo, "backend_id": "nowhere-raw"}, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code, "Cinder accepts any backend_id")
		require.Eventually(t, func() bool {
			return c.Grep("nowhere-raw is not a replication_device backend_id")
		}, 90*time.Second, 200*time.Millisecond, "cinder-volume only logs the refusal:\n%s", c.LogTail(20))
		require.Eventually(t, func() bool {
			s := service(ctx, t, c, solo)
			return s.ReplicationStatus == before.ReplicationStatus && s.ActiveBackendID == before.ActiveBackendID
		}, 90*time.Second, 200*time.Millisecond, "the service is left as it was")

		_, err = a.FailoverHost(ctx, "k5/failover", "solo", "nowhere")
		require.Error(t, err)
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), `Cinder accepted failing solo@fake over to "nowhere" (202)`)
		st, err := a.BackendStatus(ctx, "solo")
		require.NoError(t, err)
		require.Equal(t, before.ReplicationStatus, st.ReplicationStatus)
		require.Equal(t, before.ActiveBackendID, st.ActiveBackendID)
	})

	t.Run("a microversion cap below 3.26 is a clear error for clusters", func(t *testing.T) {
		old := newAdapter(t, c, "3.20")
		minV, maxV, usable, err := old.Microversions(ctx, "site-a")
		require.NoError(t, err)
		require.Equal(t, []string{"3.0", "3.70", "3.20"}, []string{minV, maxV, usable})

		// Before any run: what this cloud cannot do, per site and service.
		sup := map[string]openstack.SiteSupport{}
		for _, s := range old.Support(ctx) {
			sup[s.Site+"/"+s.Service] = s
		}
		vol := sup["site-a/volume"]
		require.Empty(t, vol.Error)
		require.Equal(t, []string{"3.0", "3.70", "3.20"}, []string{vol.Min, vol.Max, vol.Used})
		var needs []string
		for _, f := range vol.Missing {
			needs = append(needs, f.Needs)
		}
		require.Equal(t, []string{"3.26", "3.38"}, needs, "clusters (3.7) and group snapshots (3.14) are within 3.20")
		require.Contains(t, sup["site-a/compute"].Error, "compute_endpoint_override", "this cloud has no Nova: said, not hidden")
		require.NotContains(t, sup, "site-b/volume", "site-b has no Cinder service of its own")
		full := map[string]openstack.SiteSupport{}
		for _, s := range a.Support(ctx) {
			full[s.Site+"/"+s.Service] = s
		}
		require.Empty(t, full["site-a/volume"].Missing, "Zed's 3.70 does all Ferry asks")

		_, err = old.FailoverHost(ctx, "k6/failover", "cl", "dr1")
		require.Error(t, err)
		require.True(t, drivers.IsPermanent(err))
		require.Contains(t, err.Error(), "failing over cluster cl@fake (PUT /os-services/failover) needs Cinder API microversion 3.26; volume_api_version in clouds.yaml caps it at 3.20 (the endpoint supports up to 3.70)")
		err = old.Freeze(ctx, "k6/freeze", "cl")
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "needs Cinder API microversion 3.26")
		caps, err := old.Capabilities(ctx, "cl")
		require.NoError(t, err)
		// Below 3.26 a cluster neither fails over nor freezes, and below
		// 3.38 no group fails over; group snapshots (3.14) still copy.
		require.Equal(t, drivers.Capabilities{TestFailover: true}, caps)
		// Reading a cluster needs only 3.7.
		st, err := old.BackendStatus(ctx, "cl")
		require.NoError(t, err)
		require.Equal(t, ferry.ReplicationEnabled, st.ReplicationStatus)

		older := newAdapter(t, c, "3.0")
		_, err = older.BackendStatus(ctx, "cl")
		require.True(t, drivers.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "a clustered backend (cl@fake) needs Cinder API microversion 3.7")
	})
}

// newAdapter points an adapter at c through a clouds.yaml: site-a is the
// cloud, "solo" the standalone service and "cl" the cluster.
func newAdapter(t *testing.T, c *openstacktest.Cinder, volumeAPIVersion string) *openstack.Adapter {
	t.Helper()
	a, err := openstack.New(openstack.Config{
		CloudsFile: c.CloudsYAML(t, "ferry-a", "RegionOne", volumeAPIVersion),
		Sites:      map[string]openstack.Site{"site-a": {Cloud: "ferry-a", Region: "RegionOne"}, "site-b": {Cloud: "ferry-a", Region: "RegionOne"}},
		Backends: map[string]openstack.Backend{
			"solo": {Site: "site-a", Host: c.Hosts[0]},
			"cl":   {Site: "site-a", Cluster: c.ClusterName},
			// solo's replication_device dr1, as a Ferry backend at site-b.
			"solo-dr": {Site: "site-b", TargetOf: "solo", BackendID: "dr1"},
		},
		StateDir:      t.TempDir(),
		SettleTimeout: 3 * time.Minute, // generous: a loaded CI machine is slow, a passing run is not
	})
	require.NoError(t, err)
	return a
}

// makeVolume creates a volume type on the backend (replicated or not) and a
// 1 GB volume of it, and waits until Cinder has it available.
func makeVolume(ctx context.Context, t *testing.T, c *openstacktest.Cinder, name, backendName string, replicated bool) string {
	t.Helper()
	specs := map[string]string{"volume_backend_name": backendName}
	if replicated {
		specs["replication_enabled"] = "<is> True"
	}
	_, err := c.Do(ctx, http.MethodPost, "/types", "", map[string]any{"volume_type": map[string]any{"name": "type-" + name, "extra_specs": specs}}, nil)
	require.NoError(t, err)
	var created struct {
		Volume struct {
			ID string `json:"id"`
		} `json:"volume"`
	}
	_, err = c.Do(ctx, http.MethodPost, "/volumes", "", map[string]any{"volume": map[string]any{"name": name, "size": 1, "volume_type": "type-" + name}}, &created)
	require.NoError(t, err)
	var last string
	require.Eventually(t, func() bool {
		var v struct {
			Volume struct {
				Status string `json:"status"`
			} `json:"volume"`
		}
		if _, err := c.Do(ctx, http.MethodGet, "/volumes/"+created.Volume.ID, "", nil, &v); err != nil {
			last = err.Error()
			return false
		}
		last = v.Volume.Status
		require.NotEqual(t, "error", last, "volume %s: %s", name, c.LogTail(20))
		return last == "available"
	}, 3*time.Minute, 300*time.Millisecond, "volume %s: %s", name, func() string { return last })
	return name
}

func service(ctx context.Context, t *testing.T, c *openstacktest.Cinder, host string) openstacktest.Service {
	t.Helper()
	svcs, err := c.Services(ctx)
	require.NoError(t, err)
	for _, s := range svcs {
		if s.Binary == "cinder-volume" && s.Host == host {
			return s
		}
	}
	t.Fatalf("no cinder-volume %s", host)
	return openstacktest.Service{}
}

func promoted(r drivers.HostFailoverResult) []string {
	var out []string
	for _, p := range r.Promoted {
		out = append(out, p.Resource)
	}
	return out
}

// replicaMap is ReplicationStatus as "resource@backend" -> state.
func replicaMap(ctx context.Context, t *testing.T, a *openstack.Adapter, names ...string) map[string]string {
	t.Helper()
	reps, err := a.ReplicationStatus(ctx, names)
	require.NoError(t, err)
	out := map[string]string{}
	for _, r := range reps {
		out[r.Resource+"@"+r.Backend] = r.State
	}
	return out
}

func volumeStates(ctx context.Context, t *testing.T, a *openstack.Adapter, names ...string) map[string]string {
	t.Helper()
	vols, err := a.Volumes(ctx, names)
	require.NoError(t, err)
	out := map[string]string{}
	for _, v := range vols {
		out[v.Name] = v.Status + " " + v.ReplicationStatus
	}
	return out
}

// An endpoint that does not answer is Unreachable, at once, not a hang.
func TestUnreachableSite(t *testing.T) {
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	// 127.0.0.1:9 (discard) has no listener here.
	require.NoError(t, os.WriteFile(clouds, []byte(`clouds:
  gone:
    auth_type: none
    auth: {project_id: 0123456789abcdef0123456789abcdef}
    block_storage_endpoint_override: http://127.0.0.1:9/v3/
`), 0o600))
	a, err := openstack.New(openstack.Config{
		CloudsFile: clouds,
		Sites:      map[string]openstack.Site{"gone": {Cloud: "gone"}},
		Backends:   map[string]openstack.Backend{"b": {Site: "gone", Host: "h@b"}},
		StateDir:   dir,
		Timeout:    5 * time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = a.BackendStatus(ctx, "b")
	require.Error(t, err)
	require.Equal(t, drivers.Unreachable, drivers.Kind(err), fmt.Sprint(err))
	_, err = a.BackendStatus(ctx, "nope")
	require.True(t, drivers.IsPermanent(err), "unknown backend: %v", err)
}

// A Keystone cloud whose identity endpoint does not answer: every service's
// client fails Unreachable, naming the cloud, and never shows the password.
func TestUnreachableKeystone(t *testing.T) {
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	require.NoError(t, os.WriteFile(clouds, []byte(`clouds:
  prod:
    auth:
      auth_url: http://127.0.0.1:9/v3
      username: ferry
      password: s3cr3t-pw
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`), 0o600))
	a, err := openstack.New(openstack.Config{
		CloudsFile: clouds,
		Sites:      map[string]openstack.Site{"east": {Cloud: "prod", Region: "RegionOne"}},
		Backends: map[string]openstack.Backend{
			"vol":   {Site: "east", Host: "h@b"},
			"files": {Site: "east", Service: openstack.ServiceShare, Host: "m@f", AvailabilityZone: "az"},
		},
		StateDir: dir,
		Timeout:  5 * time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range a.Support(ctx) {
		require.Contains(t, s.Error, `cloud "prod": authenticate`, "%s/%s", s.Site, s.Service)
		require.NotContains(t, s.Error, "s3cr3t-pw")
	}
	_, err = a.BackendStatus(ctx, "vol")
	require.Equal(t, drivers.Unreachable, drivers.Kind(err), fmt.Sprint(err))
	_, err = a.BackendStatus(ctx, "files")
	require.Equal(t, drivers.Unreachable, drivers.Kind(err), fmt.Sprint(err))
	_, err = a.Health(ctx, "east", []string{"web-1"})
	require.Equal(t, drivers.Unreachable, drivers.Kind(err), fmt.Sprint(err))
	require.NotContains(t, fmt.Sprint(err), "s3cr3t-pw")
}
