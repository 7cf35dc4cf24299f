package netns

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferrydr/ferry/drivers"
	"github.com/stretchr/testify/require"
)

const port = ":8080" // every namespace here is ours: any port is free in it

func requireKind(t *testing.T, kind string, err error) {
	t.Helper()
	require.Error(t, err)
	var de *drivers.Error
	require.ErrorAs(t, err, &de)
	require.Equal(t, kind, de.Kind, "%v", err)
}

// The bubble answers at production's addresses with its own servers, reaches
// nothing of production, and production cannot reach into it, although the
// DR site it is created at is wired to production.
func TestBubbleIsIsolatedFromProduction(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	require.NoError(t, e.a.MapNetworks(ctx, "map-prod", "prod", []drivers.NetworkMapping{{From: "web", To: "web"}, {From: "db", To: "db"}}))
	require.NoError(t, e.a.MapNetworks(ctx, "map-dr", "dr", []drivers.NetworkMapping{{From: "web", To: "web-dr"}}))
	// The WAN between the sites, routing and forwarding everything each
	// does not know to the other: whatever a bubble were wired to at its
	// site would reach production, and production would answer.
	require.NoError(t, Link(ctx, e.prod, e.dr, "10.99.0.1/30", "10.99.0.2/30"))
	for _, r := range [][2]string{{e.dr, "10.99.0.1"}, {e.prod, "10.99.0.2"}} {
		_, err := RunIn(ctx, r[0], "ip", "route", "replace", "default", "via", r[1])
		require.NoError(t, err)
		_, err = RunIn(ctx, r[0], "sysctl", "-qw", "net.ipv4.ip_forward=1")
		require.NoError(t, err)
	}
	serve(t, e.prod, "10.77.1.1"+port, "production-web")
	serve(t, e.prod, "10.88.0.1"+port, "production-db")

	got, err := dial(ctx, t, e.dr, "10.88.0.1"+port)
	require.NoError(t, err, "the DR site reaches production over the WAN")
	require.Equal(t, "production-db", got)

	id, err := e.a.CreateBubble(ctx, "drill-1/bubble", "dr", "ferry-drill-web")
	require.NoError(t, err)
	require.Equal(t, e.a.BubbleID("drill-1/bubble"), id)
	require.True(t, strings.HasPrefix(id, e.cfg.BubblePrefix))

	nets, err := Networks(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []Network{{Name: "web-dr", Link: NetworkLink("web-dr"), Addrs: []string{"10.77.1.1/24"}}}, nets,
		"the bubble copies the site's DR networks with production addressing")
	ls, err := Links(ctx, id)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"lo", BubbleLink, NetworkLink("web-dr")}, ls, "no link leaves the bubble")
	routes, err := RunIn(ctx, id, "ip", "route", "show", "default")
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(string(routes)), "no default route in the bubble")

	// From inside, production is out of reach: its other networks, its WAN
	// end, and its web address, which inside is the bubble's own (nobody
	// listens there yet, so nothing answers: certainly not production).
	for _, addr := range []string{"10.88.0.1", "10.99.0.1", "10.77.1.1"} {
		out, err := dial(ctx, t, id, addr+port)
		require.Error(t, err, "%s reached from inside the bubble: %q", addr, out)
		require.NotContains(t, out, "production")
	}

	serve(t, id, "10.77.1.1"+port, "bubble-web")
	serve(t, id, "10.255.255.1"+port, "bubble-own")
	got, err = dial(ctx, t, id, "10.77.1.1"+port)
	require.NoError(t, err)
	require.Equal(t, "bubble-web", got, "inside, the production address is the clone's")
	got, err = dial(ctx, t, id, "10.255.255.1"+port)
	require.NoError(t, err)
	require.Equal(t, "bubble-own", got)

	// From outside, the bubble is out of reach, even with a route towards it.
	got, err = dial(ctx, t, e.prod, "10.77.1.1"+port)
	require.NoError(t, err)
	require.Equal(t, "production-web", got, "production still answers at its own address")
	for _, ns := range []string{e.prod, e.dr} {
		out, err := dial(ctx, t, ns, "10.255.255.1"+port)
		require.Error(t, err, "the bubble answered %s: %q", ns, out)
	}
}

// Destroy removes the namespace, the processes in it and every link, and
// nothing else; keys replay instead of applying twice, across restarts and
// after a crash between the change and the ledger.
func TestDestroyBubbleLeavesNothingAndKeysApplyOnce(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	require.NoError(t, e.a.MapNetworks(ctx, "map-dr", "dr", []drivers.NetworkMapping{{From: "web", To: "web-dr"}}))
	nsBefore := prefixed(t, e.prefix)
	hostBefore, err := Links(ctx, "")
	require.NoError(t, err)
	siteBefore, err := Links(ctx, e.dr)
	require.NoError(t, err)

	id, err := e.a.CreateBubble(ctx, "run-1/bubble", "dr", "drill")
	require.NoError(t, err)
	again, err := e.a.CreateBubble(ctx, "run-1/bubble", "dr", "drill")
	require.NoError(t, err)
	require.Equal(t, id, again)
	bubbles, err := e.a.Bubbles()
	require.NoError(t, err)
	require.Equal(t, []string{id}, bubbles, "a replayed create makes no second bubble")

	exited := serve(t, id, "10.77.1.1"+port, "clone")
	// A wire into the bubble from a namespace of its own: its far end must
	// go with the bubble.
	side := e.prefix + "side"
	require.NoError(t, AddNamespace(ctx, side))
	require.NoError(t, Link(ctx, side, id, "10.55.0.1/30", "10.55.0.2/30"))

	requireKind(t, drivers.Permanent, e.a.DestroyBubble(ctx, "run-1/bubble/x", "prod", id))
	requireKind(t, drivers.Permanent, e.a.DestroyBubble(ctx, "run-1/site", "dr", e.dr))
	require.True(t, Exists(e.dr), "a site's namespace is never destroyed")
	requireKind(t, drivers.Permanent, e.a.DestroyBubble(ctx, "run-1/bubble", "dr", id))

	require.NoError(t, e.a.DestroyBubble(ctx, "run-1/cleanup", "dr", id))
	require.False(t, Exists(id))
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the server inside the bubble survived it")
	}
	sideLinks, err := Links(ctx, side)
	require.NoError(t, err)
	require.Equal(t, []string{"lo"}, sideLinks, "the veth into the bubble went with it")
	require.NoError(t, DeleteNamespace(ctx, side))
	require.Equal(t, nsBefore, prefixed(t, e.prefix))
	hostAfter, err := Links(ctx, "")
	require.NoError(t, err)
	require.Equal(t, hostBefore, hostAfter)
	siteAfter, err := Links(ctx, e.dr)
	require.NoError(t, err)
	require.Equal(t, siteBefore, siteAfter)

	require.NoError(t, e.a.DestroyBubble(ctx, "run-1/cleanup", "dr", id), "replay")
	require.NoError(t, e.a.DestroyBubble(ctx, "run-2/cleanup", "dr", id), "already gone")

	// The create's key already succeeded: a replay (cleanup resolving a
	// bubble in doubt) returns its id and builds nothing, also after a
	// restart of the adapter.
	again, err = e.a.CreateBubble(ctx, "run-1/bubble", "dr", "drill")
	require.NoError(t, err)
	require.Equal(t, id, again)
	restarted, err := New(e.cfg)
	require.NoError(t, err)
	again, err = restarted.CreateBubble(ctx, "run-1/bubble", "dr", "drill")
	require.NoError(t, err)
	require.Equal(t, id, again)
	require.False(t, Exists(id), "a replayed key rebuilt a destroyed bubble")

	// A crash after the change but before the ledger: the name derives from
	// the key, so the retry finds the bubble instead of making a second one.
	id2, err := e.a.CreateBubble(ctx, "run-3/bubble", "dr", "drill")
	require.NoError(t, err)
	require.NoError(t, os.Remove(e.a.ledger.path))
	again, err = e.a.CreateBubble(ctx, "run-3/bubble", "dr", "drill")
	require.NoError(t, err)
	require.Equal(t, id2, again)
	bubbles, err = e.a.Bubbles()
	require.NoError(t, err)
	require.Equal(t, []string{id2}, bubbles)

	requireKind(t, drivers.Permanent, e.a.DestroyBubble(ctx, "run-3/bubble", "dr", id2))
	requireKind(t, drivers.Permanent, e.a.DestroyBubble(ctx, "", "dr", id2))
	_, err = e.a.CreateBubble(ctx, "run-4/bubble", "nowhere", "drill")
	requireKind(t, drivers.Permanent, err)
	_, err = e.a.CreateBubble(ctx, "run-4/bubble", "gone", "drill")
	requireKind(t, drivers.Unreachable, err)
	bubbles, err = e.a.Bubbles()
	require.NoError(t, err)
	require.Equal(t, []string{id2}, bubbles, "failed creates leave nothing")
}

func TestMapNetworksIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	maps := []drivers.NetworkMapping{{From: "web", To: "web-dr"}, {From: "db", To: "db-dr"}}
	want := []Network{
		{Name: "db-dr", Link: NetworkLink("db-dr"), Addrs: []string{"10.88.0.1/24"}},
		{Name: "web-dr", Link: NetworkLink("web-dr"), Addrs: []string{"10.77.1.1/24"}},
	}
	require.NoError(t, e.a.MapNetworks(ctx, "run-1/network", "dr", maps))
	first, err := Links(ctx, e.dr)
	require.NoError(t, err)
	for _, key := range []string{"run-1/network", "run-2/network"} {
		require.NoError(t, e.a.MapNetworks(ctx, key, "dr", maps))
		nets, err := Networks(ctx, e.dr)
		require.NoError(t, err)
		require.Equal(t, want, nets)
		ls, err := Links(ctx, e.dr)
		require.NoError(t, err)
		require.Equal(t, first, ls)
	}
	prodNets, err := Networks(ctx, e.prod)
	require.NoError(t, err)
	require.Empty(t, prodNets, "only the named site changes")

	for _, bad := range [][]drivers.NetworkMapping{{{From: "web"}}, {{From: "lan", To: "lan-dr"}}} {
		requireKind(t, drivers.Permanent, e.a.MapNetworks(ctx, "run-3/network", "dr", bad))
	}
	requireKind(t, drivers.Permanent, e.a.MapNetworks(ctx, "", "dr", maps))
	requireKind(t, drivers.Permanent, e.a.MapNetworks(ctx, "run-3/network", "nowhere", maps))
	requireKind(t, drivers.Unreachable, e.a.MapNetworks(ctx, "run-3/network", "gone", maps))
	_, err = e.a.CreateBubble(ctx, "run-1/network", "dr", "x")
	requireKind(t, drivers.Permanent, err) // a key is one operation's

	// A link that happens to have the network's name but is not Ferry's is
	// refused, never taken over.
	_, err = RunIn(ctx, e.prod, "ip", "link", "add", "name", NetworkLink("web-dr"), "type", "bridge")
	require.NoError(t, err)
	requireKind(t, drivers.Permanent, e.a.MapNetworks(ctx, "run-4/network", "prod", maps[:1]))
}

func TestPartitionCutsTheLinkAndHealRestoresIt(t *testing.T) {
	e := newEnv(t)
	ctx := testCtx(t)
	a, b, c := e.prod, e.dr, e.prefix+"third"
	require.NoError(t, AddNamespace(ctx, c))
	require.NoError(t, Link(ctx, a, b, "10.66.0.1/30", "10.66.0.2/30"))
	require.NoError(t, Link(ctx, c, a, "10.66.1.1/30", "10.66.1.2/30"))
	serve(t, b, "10.66.0.2"+port, "b")
	serve(t, a, "0.0.0.0"+port, "a")

	reach := func(from, addr, want string) {
		t.Helper()
		got, err := dial(ctx, t, from, addr+port)
		require.NoError(t, err, "%s -> %s", from, addr)
		require.Equal(t, want, got)
	}
	cut := func(from, addr string) {
		t.Helper()
		out, err := dial(ctx, t, from, addr+port)
		require.Error(t, err, "%s -> %s answered %q through the partition", from, addr, out)
	}
	reach(a, "10.66.0.2", "b")
	reach(b, "10.66.0.1", "a")

	require.NoError(t, Partition(ctx, a, b))
	require.NoError(t, Partition(ctx, a, b), "partitioning twice changes nothing")
	cut(a, "10.66.0.2")
	cut(b, "10.66.0.1")
	reach(c, "10.66.1.2", "a") // only the a-b link is cut

	require.NoError(t, Heal(ctx, a, b))
	reach(a, "10.66.0.2", "b")
	reach(b, "10.66.0.1", "a")
	require.NoError(t, Heal(ctx, a, b), "healing what is whole is fine")

	requireKind(t, drivers.Permanent, Partition(ctx, a, a))
	requireKind(t, drivers.Permanent, Partition(ctx, a, e.prefix+"nowhere"))
}

func TestCallsHonourTheirContext(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := e.a.CreateBubble(ctx, "run-1/bubble", "dr", "drill")
	requireKind(t, drivers.Retryable, err)
	requireKind(t, drivers.Retryable, e.a.MapNetworks(ctx, "run-1/network", "dr", []drivers.NetworkMapping{{From: "web", To: "web"}}))
	requireKind(t, drivers.Retryable, Partition(ctx, e.prod, e.dr))
	_, err = RunIn(ctx, e.dr, "true")
	requireKind(t, drivers.Retryable, err)
	require.Less(t, time.Since(start), 2*time.Second)
	bubbles, err := e.a.Bubbles()
	require.NoError(t, err)
	require.Empty(t, bubbles)
}
