package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers"
	"github.com/ferrydr/ferry/drivers/postgres"
	"github.com/ferrydr/ferry/drivers/rfc2136"
	"github.com/ferrydr/ferry/drivers/router"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/store"
)

// `ferry dev --postgres` adds a demo group, ledger, whose storage is real:
// a PostgreSQL primary (pg-a, site-a) streaming to a standby (pg-b,
// site-b) on this machine, moved by the postgres adapter; its DNS record,
// and every other demo record, lives on a real BIND (named) updated by RFC
// 2136; its check is a real SQL query. Its server stays simulated. See
// docs/postgres-demo.md.

// The ledger demo's names.
const (
	ledgerCluster = "ledger-db"
	ledgerTable   = "ledger_entries"
	ledgerZone    = "demo.example."
)

// postgresDemoOptions are the flags of `ferry dev` that add the demo.
type postgresDemoOptions struct {
	enabled bool
	pgPort  int
	dnsPort int
	write   time.Duration
}

// postgresDemoFlags registers --postgres and its knobs on fs.
func postgresDemoFlags(fs *flag.FlagSet) *postgresDemoOptions {
	o := &postgresDemoOptions{}
	fs.BoolVar(&o.enabled, "postgres", false, "also protect a real PostgreSQL primary/standby pair (demo group ledger) and serve the demo's DNS records from a real BIND (docs/postgres-demo.md)")
	fs.IntVar(&o.pgPort, "postgres-port", 15432, "port of the demo's PostgreSQL primary pg-a; the standby pg-b listens on the next one")
	fs.IntVar(&o.dnsPort, "dns-port", 15353, "port of the demo's DNS server (named), TCP and UDP")
	fs.DurationVar(&o.write, "postgres-write-interval", 2*time.Second, "how often the demo writes a row to whichever node is the primary (0: never)")
	return o
}

// ledgerInventory is the demo group on the real pair, beside the
// simulated demo.
func ledgerInventory() ferry.Inventory {
	return ferry.Inventory{
		Backends: []ferry.Backend{
			{Name: "pg-a", Site: "site-a", Type: "postgres", Members: []string{"pg-a"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-b", Backend: "pg-b"}}},
			{Name: "pg-b", Site: "site-b", Type: "postgres", Members: []string{"pg-b"},
				ReplicationTargets: []ferry.ReplicationTarget{{ID: "site-a", Backend: "pg-a"}}},
		},
		Groups: []ferry.Group{{
			Name: "ledger", Project: "finance", PrimarySite: "site-a", DRSite: "site-b", RPOSeconds: 30,
			Consistency: ferry.ConsistencyCrash, QuiescePolicy: ferry.QuiesceContinue, Priority: 30,
			Volumes: []ferry.Volume{{Name: ledgerCluster, Backend: "pg-a"}},
			Tiers: []ferry.Tier{{Name: "app", Servers: []ferry.Server{
				{Name: "ledger-app-1", Networks: []string{"prod-ledger"}},
			}}},
			NetworkMappings: []ferry.NetworkMapping{{Production: "prod-ledger", DR: "dr-ledger", Test: "bubble-ledger"}},
			DNSRecords:      []ferry.DNSRecord{{Name: "ledger.demo.example", Type: "A", TTL: 60, Primary: "10.1.0.50", DR: "10.2.0.50"}},
			Checks: []ferry.Check{{Name: "ledger-has-entries", Type: ferry.CheckSQL,
				Target: ledgerCluster + ": SELECT count(*) > 0 FROM " + ledgerTable, Expect: "t"}},
		}},
	}
}

// wire starts the demo when --postgres was given: the pair, named, the
// ledger group in the store and the simulator, and a writer. It returns
// the drivers the dev worker uses (base, with the ledger's storage and sql
// checks routed to the pair and DNS written to named and the simulator's
// zone) and a stop function. Without --postgres it returns base and a
// no-op.
func (o *postgresDemoOptions) wire(ctx context.Context, cfg config.Config, st *store.Store, cloud *sim.Cloud, base drivers.Set, stdout io.Writer, logger *slog.Logger) (drivers.Set, func(), error) {
	if o == nil || !o.enabled {
		return base, func() {}, nil
	}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) (drivers.Set, func(), error) {
		stop()
		return drivers.Set{}, nil, err
	}
	for _, p := range []int{o.pgPort, o.pgPort + 1} {
		if err := portFree(p); err != nil {
			return fail(fmt.Errorf("--postgres-port: %w", err))
		}
	}

	// The pair starts anew each time, like the in-process simulator: in
	// the temp dir, since PostgreSQL runs as the postgres user, who must
	// reach its files.
	root := filepath.Join(os.TempDir(), "ferry-dev-postgres")
	if err := postgres.RemovePair(root); err != nil {
		return fail(err)
	}
	logger.Info("starting the demo's PostgreSQL pair", "dir", root)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pair, err := postgres.StartPair(pctx, postgres.PairOptions{
		Root: root, Cluster: ledgerCluster,
		Nodes: [2]postgres.Node{
			{Name: "pg-a", Site: "site-a", Port: o.pgPort},
			{Name: "pg-b", Site: "site-b", Port: o.pgPort + 1},
		},
		Schema: `CREATE TABLE ` + ledgerTable + ` (id bigserial PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
INSERT INTO ` + ledgerTable + ` (note) VALUES ('opening balance, written on pg-a');`,
	})
	if err != nil {
		return fail(fmt.Errorf("postgres demo: %w", err))
	}
	stops = append(stops, pair.Stop)

	// Every demo record on the real server, at its primary value.
	inv := demo.Inventory()
	ledger := ledgerInventory()
	var records []drivers.Record
	for _, g := range append(inv.Groups, ledger.Groups...) {
		for _, r := range g.DNSRecords {
			records = append(records, drivers.Record{Name: absName(r.Name), Type: r.Type, TTL: r.TTL, Value: r.Primary})
		}
	}
	named, err := rfc2136.StartNamed(pctx, rfc2136.NamedOptions{Zone: ledgerZone, Records: records, Port: o.dnsPort})
	if err != nil {
		return fail(fmt.Errorf("postgres demo: DNS server: %w", err))
	}
	stops = append(stops, func() { _ = named.Stop() })
	bind, err := rfc2136.New(named.Config())
	if err != nil {
		return fail(err)
	}

	if err := st.ApplyInventory(ctx, ledger); err != nil {
		return fail(fmt.Errorf("seed the ledger group: %w", err))
	}
	if err := st.SetGroupActiveSite(ctx, "ledger", ""); err != nil {
		return fail(fmt.Errorf("reset the ledger group: %w", err))
	}
	// The simulator runs the group's server, networks and record; the
	// storage is the real pair's, which the simulator does not know.
	simInv := ferry.Inventory{Groups: append([]ferry.Group(nil), ledger.Groups...)}
	simInv.Groups[0].Volumes = nil
	if err := cloud.LoadInventory(simInv); err != nil {
		return fail(fmt.Errorf("seed the simulator with the ledger group: %w", err))
	}

	storage := router.NewStorage(router.Of("sim", base))
	if err := storage.Add(router.Adapter{Name: "postgres", Storage: pair.Adapter},
		[]string{"pg-a", "pg-b"}, router.ResourcesOn(ledger, "pg-a", "pg-b")); err != nil {
		return fail(err)
	}
	pgv := pair.Adapter.Verify()
	verify := router.NewVerify(base.Verify)
	verify.Route(ferry.CheckSQL, pgv.Owns, pgv)
	set := storage.Set(base)
	set.DNS = router.NewTee(router.Zone{Name: "named", DNS: bind}, router.Zone{Name: "sim", DNS: base.DNS})
	set.Verify = verify

	if o.write > 0 {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); writeLedger(wctx, pair.Config.Nodes, o.write) }()
		stops = append(stops, func() { cancel(); <-done })
	}

	a, b := pair.Config.Nodes[0], pair.Config.Nodes[1]
	fmt.Fprintf(stdout, `
Real PostgreSQL and DNS for demo group ledger (docs/postgres-demo.md):
  pg-a (site-a, primary)  psql -h %s -p %d -U postgres -c 'SELECT pg_is_in_recovery(), count(*) FROM %s'
  pg-b (site-b, standby)  psql -h %s -p %d -U postgres -c 'SELECT pg_is_in_recovery(), count(*) FROM %s'
  DNS (BIND, zone %s)  dig @127.0.0.1 -p %d +tcp +short ledger.demo.example A
  Data in %s; a row is written to the primary every %s.
Fail it over:  ./bin/ferry failover ledger --yes
`, a.Host, a.Port, ledgerTable, b.Host, b.Port, ledgerTable, ledgerZone, o.dnsPort, root, o.write)
	logger.Info("postgres demo ready", "pg-a", net.JoinHostPort(a.Host, strconv.Itoa(a.Port)),
		"pg-b", net.JoinHostPort(b.Host, strconv.Itoa(b.Port)), "dns", named.Addr, "zone", ledgerZone)
	return set, stop, nil
}

// absName makes a record name absolute, as the zone file needs it.
func absName(name string) string {
	if len(name) > 0 && name[len(name)-1] == '.' {
		return name
	}
	return name + "."
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on 127.0.0.1 is taken: %w", port, err)
	}
	return l.Close()
}

// writeLedger writes one row every interval to whichever node takes
// writes: the demo's application. A write that finds no primary (during a
// failover) is skipped: the rows show when the database took writes.
func writeLedger(ctx context.Context, nodes []postgres.Node, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range nodes {
			if writeLedgerRow(ctx, n) == nil {
				break
			}
		}
	}
}

func writeLedgerRow(ctx context.Context, n postgres.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=1", n.Host, n.Port))
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	// A standby refuses the INSERT itself (read-only transaction).
	_, err = c.Exec(ctx, `INSERT INTO `+ledgerTable+` (note) VALUES ('written on ' || current_setting('cluster_name'))`)
	return err
}
