package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// DefaultCheckQuery is what an sql check runs when its target names no
// query.
const DefaultCheckQuery = "SELECT 1"

// Verify runs checks of type "sql" on the adapter's cluster: real queries
// on a real node, read-only.
//
// A check's Target is "NAME" or "NAME:QUERY". NAME is the cluster (the
// group's resource) or one of its nodes (backends); QUERY defaults to
// DefaultCheckQuery. Expect, if set, must equal the first column of the
// first row as PostgreSQL prints it (psql shows the same: "t" for true).
//
// Which copy a check reads: a check that names a node reads that node. One
// that names the cluster reads the writable copy at the check's site,
// which is what a check after a failover or inside a drill's bubble
// means: the node at that site when it is the active, writable primary;
// else the newest drill clone made from that node (inside a test bubble
// the clone is the database); else the check fails, saying the node there
// is a standby. The query runs in a READ ONLY transaction with a statement
// timeout, so a check never writes and never hangs.
type Verify struct {
	a *Adapter
	// Timeout bounds each check (default 10s).
	Timeout time.Duration
}

// Verify returns the adapter's sql checks.
func (a *Adapter) Verify() *Verify { return &Verify{a: a, Timeout: 10 * time.Second} }

var _ drivers.Verify = (*Verify)(nil)

// Owns reports whether target names this cluster or one of its nodes: what
// a router asks before it sends an sql check here.
func (v *Verify) Owns(target string) bool {
	name, _ := splitTarget(target)
	if name == v.a.cfg.Cluster {
		return true
	}
	_, ok := v.a.nodes[name]
	return ok
}

func splitTarget(target string) (name, query string) {
	name, query, _ = strings.Cut(target, ":")
	name, query = strings.TrimSpace(name), strings.TrimSpace(query)
	if query == "" {
		query = DefaultCheckQuery
	}
	return name, query
}

// Check runs one sql check from site (see Verify). When network is the
// bubble (network namespace) of a drill clone, the check reads that clone
// from inside the bubble; a clone in a bubble is never read from outside.
func (v *Verify) Check(ctx context.Context, site, network string, c drivers.CheckSpec) (drivers.CheckResult, error) {
	const op = "verify.check"
	start := time.Now()
	res := drivers.CheckResult{Name: c.Name}
	if c.Type != ferry.CheckSQL {
		return res, drivers.Errorf(drivers.Permanent, op, "check %s: the postgres adapter runs sql checks, not %q", c.Name, c.Type)
	}
	if v.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.Timeout)
		defer cancel()
	}
	name, query := splitTarget(c.Target)
	bubble, host, port, what, detail, err := v.copyIn(ctx, op, name, site, network)
	if err != nil {
		return res, err
	}
	if detail == "" {
		var got string
		got, err = v.query(ctx, op, bubble, host, port, query)
		switch {
		case err != nil && drivers.Kind(err) != drivers.Permanent:
			return res, err
		case err != nil:
			detail = fmt.Sprintf("%s on %s: %v", query, what, err)
		case c.Expect != "" && got != c.Expect:
			detail = fmt.Sprintf("%s on %s answered %q, want %q", query, what, got, c.Expect)
		default:
			res.Passed = true
			detail = fmt.Sprintf("%s on %s answered %q", query, what, got)
		}
	}
	res.Detail, res.Elapsed = detail, time.Since(start)
	return res, nil
}

// copyFor picks the copy a check reads. A non-empty detail is a failed
// check (there is no writable copy); an error is a failure to find out.
// Only clones in bubble ("": on the host) are candidates.
func (v *Verify) copyFor(ctx context.Context, op, name, site, bubble string) (host string, port int, what, detail string, err error) {
	a := v.a
	if n, ok := a.nodes[name]; ok {
		return n.Host, n.Port, "node " + n.Name, "", nil
	}
	if name != a.cfg.Cluster {
		return "", 0, "", "", drivers.Errorf(drivers.Permanent, op, "target %q names neither cluster %s nor one of its nodes", name, a.cfg.Cluster)
	}
	var n Node
	found := false
	for _, cand := range a.cfg.Nodes {
		if cand.Site == site {
			n, found = cand, true
		}
	}
	if !found {
		return "", 0, "", fmt.Sprintf("cluster %s has no node at site %s", name, site), nil
	}
	a.mu.Lock()
	ns := *a.st.Nodes[n.Name]
	active := a.st.Active == n.Name && !a.st.Demoted
	var clone *cloneState
	best := -1
	for _, cl := range a.st.Clones {
		num, _ := strconv.Atoi(strings.TrimPrefix(cl.ID, "clone-"))
		if cl.Backend == n.Name && cl.Bubble == bubble && num > best {
			c := *cl
			clone, best = &c, num
		}
	}
	a.mu.Unlock()
	if active && !ns.Fenced {
		p, err := a.probe(ctx, op, n)
		if err != nil {
			return "", 0, "", "", err
		}
		if !p.recovery {
			return n.Host, n.Port, "primary " + n.Name, "", nil
		}
	}
	if clone != nil {
		return clone.Host, clone.Port, "drill clone " + clone.ID + " of " + n.Name, "", nil
	}
	return "", 0, "", fmt.Sprintf("no writable copy of %s at site %s: node %s is not the primary (active is %s)", name, site, n.Name, v.activeName()), nil
}

func (v *Verify) activeName() string {
	v.a.mu.Lock()
	defer v.a.mu.Unlock()
	if v.a.st.Demoted {
		return v.a.st.Active + ", demoted"
	}
	return v.a.st.Active
}

// query runs q read-only from inside bubble ("": the host) and returns the
// first column of its first row as text.
func (v *Verify) query(ctx context.Context, op, bubble, host string, port int, q string) (string, error) {
	c, err := v.a.connectIn(ctx, op, bubble, host, port)
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close(context.Background()) }()
	tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", classify(ctx, op, err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	ms := int64(5000)
	if d, ok := ctx.Deadline(); ok {
		ms = max(time.Until(d).Milliseconds(), 1)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", ms)); err != nil {
		return "", classify(ctx, op, err)
	}
	// The extended protocol runs one statement only, so a check cannot
	// end the read-only transaction and go on; text results read as psql
	// prints them.
	rows, err := tx.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return "", classify(ctx, op, err)
	}
	defer rows.Close()
	out := ""
	if rows.Next() {
		if raw := rows.RawValues(); len(raw) > 0 {
			if raw[0] == nil {
				out = "NULL"
			} else {
				out = string(raw[0])
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", classify(ctx, op, err)
	}
	return out, nil
}
