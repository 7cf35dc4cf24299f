package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/store/storetest"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPostgresDemoWiring starts what `ferry dev --postgres` adds and checks
// each part answers for real: the pair, named with every demo record, the
// ledger group in the store and the simulator, and drivers that route the
// ledger to the real database and leave the simulated groups alone. Stop
// leaves nothing behind.
func TestPostgresDemoWiring(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := storetest.New(t)
	require.NoError(t, st.ApplyInventory(ctx, demo.Inventory()))
	cloud := sim.NewCloud(sim.Options{})
	require.NoError(t, cloud.LoadInventory(demo.Inventory()))
	base := sim.NewInProcess(cloud).Set()

	o := &postgresDemoOptions{enabled: true, pgPort: freePort(t), dnsPort: freePort(t), write: 50 * time.Millisecond}
	var out bytes.Buffer
	set, stop, err := o.wire(ctx, config.Config{}, st, cloud, base, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	require.Contains(t, out.String(), "psql -h 127.0.0.1 -p")

	// The store and the simulator know the group.
	g, err := st.GetGroup(ctx, "ledger")
	require.NoError(t, err)
	require.Equal(t, ledgerCluster, g.Volumes[0].Name)
	hs, err := set.Compute.Health(ctx, "site-a", []string{"ledger-app-1"})
	require.NoError(t, err)
	require.Equal(t, drivers.ServerRunning, hs[0].State)

	// Storage: the ledger's backends are the real nodes; the demo's stay
	// simulated.
	bs, err := set.Storage.BackendStatus(ctx, "pg-a")
	require.NoError(t, err)
	require.True(t, bs.Reachable)
	rs, err := set.Storage.ReplicationStatus(ctx, []string{ledgerCluster, "crm-db-data"})
	require.NoError(t, err)
	states := map[string]string{}
	for _, r := range rs {
		states[r.Resource+"@"+r.Backend] = r.State
	}
	require.Equal(t, ferry.ReplicaActive, states[ledgerCluster+"@pg-a"])
	require.Equal(t, ferry.ReplicaActive, states["crm-db-data@a-block"])

	// The writer fills the real table, and the group's sql check reads it.
	conn, err := pgx.Connect(ctx, "host=127.0.0.1 user=postgres dbname=postgres sslmode=disable port="+itoa(o.pgPort))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		return conn.QueryRow(ctx, `SELECT count(*) FROM `+ledgerTable+` WHERE note = 'written on pg-a'`).Scan(&n) == nil && n >= 2
	}, 30*time.Second, 50*time.Millisecond, "the demo writer wrote nothing")
	_ = conn.Close(ctx)
	c := g.Checks[0]
	res, err := set.Verify.Check(ctx, "site-a", "", drivers.CheckSpec{Name: c.Name, Type: c.Type, Target: c.Target, Expect: c.Expect})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Detail)

	// DNS: every demo record on the real server, written through to the
	// simulator's zone too.
	require.Equal(t, "10.1.0.20", dnsA(t, o.dnsPort, "crm.demo.example."))
	require.NoError(t, set.DNS.Replace(ctx, "test/ledger", drivers.Record{Name: "ledger.demo.example", Type: "A", TTL: 60, Value: "10.2.0.50"}))
	require.Equal(t, "10.2.0.50", dnsA(t, o.dnsPort, "ledger.demo.example."))
	r, err := cloud.Get(ctx, "ledger.demo.example", "A")
	require.NoError(t, err)
	require.Equal(t, "10.2.0.50", r.Value)

	stop()
	stopped = true
	_, err = os.Stat(filepath.Join(os.TempDir(), "ferry-dev-postgres"))
	require.True(t, os.IsNotExist(err), "the pair's directory is left: %v", err)
	for _, p := range []int{o.pgPort, o.pgPort + 1, o.dnsPort} {
		require.NoError(t, portFree(p), "something still listens on %d", p)
	}
}

func dnsA(t *testing.T, port int, name string) string {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	resp, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, net.JoinHostPort("127.0.0.1", itoa(port)))
	require.NoError(t, err)
	require.Len(t, resp.Answer, 1, "%v", resp)
	return resp.Answer[0].(*dns.A).A.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
