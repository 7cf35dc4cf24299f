package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// frozenAllowed are the mutating calls a frozen backend still takes, as in
// the simulator: lifting the freeze, fencing, and failover bookkeeping.
var frozenAllowed = map[string]bool{
	"storage.freeze": true, "storage.thaw": true, "storage.fence": true, "storage.unfence": true,
	"storage.failover_completed": true, "storage.set_replication_status": true,
}

func perm(op, format string, args ...any) error {
	return drivers.Errorf(drivers.Permanent, op, format, args...)
}

// mutate runs a mutating call once per idempotency key: a key that
// succeeded before returns its first result and applies nothing. The ledger
// sits in the adapter's state file with the rest of the state.
func mutate[T any](ctx context.Context, a *Adapter, op, key, backend string, fn func() (T, error)) (T, error) {
	var zero T
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return zero, &drivers.Error{Kind: drivers.Retryable, Op: op, Err: err}
	}
	if e, ok := a.st.Ledger[key]; ok && key != "" {
		if e.Op != op {
			return zero, perm(op, "idempotency key %q was already used for %s", key, e.Op)
		}
		var v T
		if err := json.Unmarshal(e.Result, &v); err != nil {
			return zero, perm(op, "ledger entry %q: %v", key, err)
		}
		return v, nil
	}
	if ns, ok := a.st.Nodes[backend]; ok && ns.Frozen && !frozenAllowed[op] {
		return zero, perm(op, "backend %s is frozen: thaw it first", backend)
	}
	v, err := fn()
	if serr := a.save(); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return zero, classify(ctx, op, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return zero, perm(op, "encode result: %v", err)
	}
	// Answer what a replay will answer: the result as the ledger keeps it.
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		return zero, perm(op, "decode result: %v", err)
	}
	if key != "" {
		a.st.Ledger[key] = ledgerEntry{Op: op, Result: raw}
		if err := a.save(); err != nil {
			return zero, err
		}
	}
	return out, nil
}

func (a *Adapter) node(op, name string) (Node, error) {
	n, ok := a.nodes[name]
	if !ok {
		return Node{}, perm(op, "unknown backend %q", name)
	}
	return n, nil
}

// peer is the other node of the pair.
func (a *Adapter) peer(name string) Node {
	for _, n := range a.cfg.Nodes {
		if n.Name != name {
			return n
		}
	}
	return Node{}
}

func (a *Adapter) checkResources(op string, resources []string) error {
	if len(resources) == 0 {
		return perm(op, "no resources")
	}
	for _, r := range resources {
		if r != a.cfg.Cluster {
			return perm(op, "unknown resource %q (this backend holds %q)", r, a.cfg.Cluster)
		}
	}
	return nil
}

// reachableNode looks a backend up and checks it answers.
func (a *Adapter) reachableNode(ctx context.Context, op, name string) (Node, error) {
	n, err := a.node(op, name)
	if err != nil {
		return n, err
	}
	return n, dial(ctx, op, n)
}

// probe is one node's WAL position as the node reports it.
type probe struct {
	recovery bool
	lsn      int64 // replay position in recovery, else the current position
	replayTS *time.Time
	ckptTS   time.Time
}

func (a *Adapter) probe(ctx context.Context, op string, n Node) (probe, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := a.connectNode(ctx, op, n)
	if err != nil {
		return probe{}, err
	}
	defer func() { _ = c.Close(context.Background()) }()
	var p probe
	err = c.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0')::bigint,
		pg_last_xact_replay_timestamp(), (pg_control_checkpoint()).checkpoint_time`).Scan(&p.recovery, &p.lsn, &p.replayTS, &p.ckptTS)
	if err != nil {
		return probe{}, classify(ctx, op, err)
	}
	return p, nil
}

// consistentAt is the newest commit a node holds: its last replayed commit,
// or its last restartpoint's time if it replayed none since it started.
func (p probe) consistentAt() time.Time {
	if p.replayTS != nil {
		return *p.replayTS
	}
	return p.ckptTS
}

// Capabilities: everything but counting writes.
func (a *Adapter) Capabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	const op = "storage.capabilities"
	if _, err := a.reachableNode(ctx, op, backend); err != nil {
		return drivers.Capabilities{}, err
	}
	return drivers.Capabilities{Replication: true, ConsistencyGroup: true, Freeze: true, Fence: true, TestFailover: true}, nil
}

// BackendStatus reports the adapter's bookkeeping for a node that answers.
func (a *Adapter) BackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	const op = "storage.backend_status"
	n, err := a.reachableNode(ctx, op, backend)
	if err != nil {
		return drivers.BackendStatus{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ns := a.st.Nodes[n.Name]
	return drivers.BackendStatus{
		Backend: n.Name, Site: n.Site, Reachable: true, ReplicationStatus: ns.ReplicationStatus,
		ActiveBackendID: ns.ActiveBackendID, Frozen: ns.Frozen, Fenced: ns.Fenced, FenceEpoch: ns.Epoch,
		Members: []drivers.MemberStatus{{Name: n.Name, ActiveBackendID: ns.MemberActive, Up: true}},
	}, nil
}

// ReplicationStatus reports both nodes. A standby that has replayed
// everything the active has is in sync with no lag; one that is behind is
// consistent as of its last replayed commit, and its lag is the age of
// that commit: never less than the data a failover to it would lose.
func (a *Adapter) ReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.replication_status"
	if err := a.checkResources(op, resources); err != nil {
		return nil, err
	}
	a.mu.Lock()
	st := a.snapshotState()
	a.mu.Unlock()
	out := []drivers.ReplicaStatus{}
	for _, res := range resources {
		for _, n := range a.cfg.Nodes {
			out = append(out, a.replicaStatus(ctx, res, n, st))
		}
	}
	return out, nil
}

// snapshotState copies what a query needs, so it can run unlocked.
func (a *Adapter) snapshotState() state {
	st := state{Active: a.st.Active, Demoted: a.st.Demoted, Nodes: map[string]*nodeState{}}
	for k, v := range a.st.Nodes {
		c := *v
		st.Nodes[k] = &c
	}
	return st
}

func (a *Adapter) replicaStatus(ctx context.Context, res string, n Node, st state) drivers.ReplicaStatus {
	const op = "storage.replication_status"
	rs := drivers.ReplicaStatus{Resource: res, Site: n.Site, Backend: n.Name, State: ferry.ReplicaError}
	ns := st.Nodes[n.Name]
	if ns.Diverged {
		return rs
	}
	if ns.Fenced {
		return a.fencedStatus(ctx, rs, n, st)
	}
	p, err := a.probe(ctx, op, n)
	if err != nil {
		return rs
	}
	now := time.Now()
	rs.Seq = p.lsn
	if !p.recovery {
		if n.Name == st.Active {
			rs.State, rs.LastConsistent = ferry.ReplicaActive, now
		}
		return rs
	}
	rs.State, rs.LastConsistent = ferry.ReplicaInSync, now
	if n.Name == st.Active {
		return rs // a demoted active: everything there is, read-only
	}
	src, err := a.probe(ctx, op, a.nodes[st.Active])
	if err == nil && p.lsn >= src.lsn {
		return rs
	}
	rs.LastConsistent = p.consistentAt()
	rs.Lag = max(now.Sub(rs.LastConsistent), 0)
	if rs.Lag > a.cfg.RPO {
		rs.State = ferry.ReplicaOutOfSync
	}
	return rs
}

// fencedStatus reports a fenced node that is not diverged: it refuses
// every session, but once resynced it streams from the active like any
// standby, and the active's pg_stat_replication says how far it replayed.
// A fenced node that does not stream is in error.
func (a *Adapter) fencedStatus(ctx context.Context, rs drivers.ReplicaStatus, n Node, st state) drivers.ReplicaStatus {
	const op = "storage.replication_status"
	if n.Name == st.Active {
		return rs
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := a.connectNode(ctx, op, a.nodes[st.Active])
	if err != nil {
		return rs
	}
	defer func() { _ = c.Close(context.Background()) }()
	var replay, current int64
	var lag *time.Duration
	err = c.QueryRow(ctx, `SELECT (r.replay_lsn - '0/0')::bigint, (pg_current_wal_lsn() - '0/0')::bigint, r.replay_lag
		FROM pg_stat_replication r WHERE r.application_name = $1 AND r.state = 'streaming' AND r.replay_lsn IS NOT NULL`, n.Name).Scan(&replay, &current, &lag)
	if err != nil {
		return rs
	}
	now := time.Now()
	rs.Seq, rs.State, rs.LastConsistent = replay, ferry.ReplicaInSync, now
	if replay < current {
		if lag != nil {
			rs.Lag = *lag
		}
		rs.LastConsistent = now.Add(-rs.Lag)
		if rs.Lag > a.cfg.RPO {
			rs.State = ferry.ReplicaOutOfSync
		}
	}
	return rs
}

// activeNode returns backend if it is the active primary.
func (a *Adapter) activeNode(op, backend string) (Node, error) {
	n, err := a.node(op, backend)
	if err != nil {
		return n, err
	}
	if a.st.Active != backend || a.st.Demoted {
		return n, perm(op, "%s is not active on backend %s", a.cfg.Cluster, backend)
	}
	return n, nil
}

// SnapshotGroup creates a named restore point on the active primary: one
// database is consistent by itself.
func (a *Adapter) SnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	const op = "storage.snapshot_group"
	return mutate(ctx, a, op, key, backend, func() (drivers.Snapshot, error) {
		if err := a.checkResources(op, resources); err != nil {
			return drivers.Snapshot{}, err
		}
		n, err := a.activeNode(op, backend)
		if err != nil {
			return drivers.Snapshot{}, err
		}
		c, err := a.connectNode(ctx, op, n)
		if err != nil {
			return drivers.Snapshot{}, err
		}
		defer func() { _ = c.Close(context.Background()) }()
		a.st.NextID++
		id := fmt.Sprintf("ferry-snap-%d", a.st.NextID)
		var lsn int64
		if err := c.QueryRow(ctx, `SELECT (pg_create_restore_point($1) - '0/0')::bigint`, id).Scan(&lsn); err != nil {
			return drivers.Snapshot{}, err
		}
		return drivers.Snapshot{ID: id, Taken: time.Now(), Seqs: map[string]int64{a.cfg.Cluster: lsn}}, nil
	})
}

// Sync waits until the standby has replayed everything the primary has
// written now.
func (a *Adapter) Sync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.sync"
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		if err := a.checkResources(op, resources); err != nil {
			return struct{}{}, err
		}
		n, err := a.activeNode(op, backend)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, a.waitReplayed(ctx, op, n, a.peer(backend), 0)
	})
	if err != nil {
		return nil, err
	}
	return a.ReplicationStatus(ctx, resources)
}

// waitReplayed waits until standby has replayed past `past`, or, if past is
// 0, up to the primary's current position; it fails at once if the standby
// is not streaming from it.
func (a *Adapter) waitReplayed(ctx context.Context, op string, primary, standby Node, past int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if past == 0 {
		c, err := a.connectNode(ctx, op, primary)
		if err != nil {
			return err
		}
		var lsn, streaming int64
		err = c.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0')::bigint,
			(SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming')`, standby.Name).Scan(&lsn, &streaming)
		_ = c.Close(context.Background())
		if err != nil {
			return classify(ctx, op, err)
		}
		if streaming == 0 {
			return drivers.Errorf(drivers.Unreachable, op, "standby %s at %s is not streaming from %s", standby.Name, standby.Site, primary.Name)
		}
		past = lsn - 1
	}
	for {
		p, err := a.probe(ctx, op, standby)
		if err != nil {
			return err
		}
		if p.lsn > past {
			return nil
		}
		select {
		case <-ctx.Done():
			return drivers.Errorf(drivers.Retryable, op, "standby %s replayed to %d, not past %d", standby.Name, p.lsn, past)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var ckptRe = regexp.MustCompile(`(?m)^Latest checkpoint location:\s+([0-9A-F]+)/([0-9A-F]+)$`)

// Demote stops the primary cleanly (its last WAL, up to the shutdown
// checkpoint, goes to the streaming standby on the way out) and starts it
// again as a standby of its peer. A node that is already a standby is left
// as it is.
func (a *Adapter) Demote(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.demote"
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		if err := a.checkResources(op, resources); err != nil {
			return struct{}{}, err
		}
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		ns := a.st.Nodes[n.Name]
		if ns.Role != rolePrimary {
			return struct{}{}, nil
		}
		if ns.Diverged {
			return struct{}{}, perm(op, "%s on %s has diverged: resync it first", a.cfg.Cluster, backend)
		}
		if err := a.stop(ctx, op, n.DataDir(), "fast"); err != nil {
			return struct{}{}, err
		}
		out, err := a.pg(ctx, op, nil, "pg_controldata", n.DataDir())
		if err != nil {
			return struct{}{}, err
		}
		m := ckptRe.FindStringSubmatch(out)
		if m == nil {
			return struct{}{}, perm(op, "pg_controldata: no checkpoint location in %q", out)
		}
		hi, _ := strconv.ParseInt(m[1], 16, 64)
		lo, _ := strconv.ParseInt(m[2], 16, 64)
		if err := a.becomeStandby(ctx, op, n, a.peer(n.Name)); err != nil {
			return struct{}{}, err
		}
		ns.Role = roleStandby
		if a.st.Active == n.Name {
			a.st.Demoted, a.st.DemoteLSN = true, hi<<32|lo
		}
		return struct{}{}, nil
	})
	return err
}

// becomeStandby starts a stopped node as a standby of upstream.
func (a *Adapter) becomeStandby(ctx context.Context, op string, n, upstream Node) error {
	if err := a.writeOwned(filepath.Join(n.DataDir(), "standby.signal"), ""); err != nil {
		return drivers.Errorf(drivers.Retryable, op, "standby.signal: %v", err)
	}
	if err := a.writeNodeConf(n.Dir, n.Name, n.Host, n.Port, &upstream); err != nil {
		return drivers.Errorf(drivers.Retryable, op, "node.conf: %v", err)
	}
	return a.start(ctx, op, nil, n.Dir)
}

// Promote makes backend's node the primary with pg_promote. Promoting the
// active again is a no-op, or undoes a planned demote. A planned promote
// (no force) needs the active demoted and waits until this node has
// replayed its shutdown checkpoint, so it loses nothing; a forced one takes
// what the node has, marks the old active diverged, and reports the loss
// as a window (LostWrites -1): WAL positions do not count writes.
func (a *Adapter) Promote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	const op = "storage.promote"
	return mutate(ctx, a, op, key, backend, func() (drivers.PromoteResult, error) {
		var res drivers.PromoteResult
		if err := a.checkResources(op, resources); err != nil {
			return res, err
		}
		n, err := a.node(op, backend)
		if err != nil {
			return res, err
		}
		ns := a.st.Nodes[n.Name]
		if ns.Diverged {
			return res, perm(op, "%s on %s has diverged: resync it first", a.cfg.Cluster, backend)
		}
		if a.st.Active != n.Name && !force && !a.st.Demoted {
			return res, perm(op, "%s is active on %s: demote first or force", a.cfg.Cluster, a.st.Active)
		}
		if err := dial(ctx, op, n); err != nil {
			return res, err
		}
		if a.st.Active != n.Name && a.st.Demoted {
			// A planned failover: take over only once every write of the
			// demoted primary is here.
			if err := a.waitReplayed(ctx, op, a.nodes[a.st.Active], n, a.st.DemoteLSN); err != nil {
				return res, err
			}
		}
		if err := a.promote(ctx, op, n); err != nil {
			return res, err
		}
		pt := drivers.PromotedPoint{Resource: a.cfg.Cluster}
		if a.st.Active == n.Name {
			p, err := a.probe(ctx, op, n)
			if err != nil {
				return res, err
			}
			pt.Seq, pt.At = p.lsn, time.Now()
		} else {
			if pt.Seq, pt.At, err = a.replayed(ctx, op, n); err != nil {
				return res, err
			}
			old := a.st.Nodes[a.st.Active]
			if !a.st.Demoted || pt.Seq <= a.st.DemoteLSN {
				old.Diverged = true
				pt.LostWrites = -1
				until := time.Now()
				if old.Fenced && !old.FencedAt.IsZero() {
					until = old.FencedAt
				}
				pt.DataLoss = max(until.Sub(pt.At), time.Nanosecond)
			}
		}
		ns.Role = rolePrimary
		a.st.Active, a.st.Demoted, a.st.DemoteLSN = n.Name, false, 0
		res.Points = []drivers.PromotedPoint{pt}
		return res, nil
	})
}

// replayed is where a promoted node's recovery ended: the last WAL
// position it replayed and the commit time of the last transaction in it.
// Both stay fixed once recovery is over.
func (a *Adapter) replayed(ctx context.Context, op string, n Node) (int64, time.Time, error) {
	c, err := a.connectNode(ctx, op, n)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer func() { _ = c.Close(context.Background()) }()
	var lsn int64
	var ts *time.Time
	var ckpt time.Time
	err = c.QueryRow(ctx, `SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint, pg_last_xact_replay_timestamp(),
		(pg_control_checkpoint()).checkpoint_time`).Scan(&lsn, &ts, &ckpt)
	if err != nil {
		return 0, time.Time{}, err
	}
	return lsn, probe{replayTS: ts, ckptTS: ckpt}.consistentAt(), nil
}

// promote ends recovery on a node (a no-op on a primary) and drops its
// upstream from node.conf.
func (a *Adapter) promote(ctx context.Context, op string, n Node) error {
	c, err := a.connectNode(ctx, op, n)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	var recovery bool
	if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil {
		return err
	}
	if recovery {
		var ok bool
		if err := c.QueryRow(ctx, `SELECT pg_promote(true, 60)`).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return drivers.Errorf(drivers.Retryable, op, "pg_promote on %s did not finish within 60s", n.Name)
		}
	}
	if err := a.writeNodeConf(n.Dir, n.Name, n.Host, n.Port, nil); err != nil {
		return drivers.Errorf(drivers.Retryable, op, "node.conf: %v", err)
	}
	_, err = c.Exec(ctx, `SELECT pg_reload_conf()`)
	return err
}

// FailoverCompleted records the node's own view of the active backend.
func (a *Adapter) FailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	const op = "storage.failover_completed"
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		if member != n.Name {
			return struct{}{}, perm(op, "backend %s has no member %q (its one member is the node itself)", backend, member)
		}
		a.st.Nodes[n.Name].MemberActive = activeBackendID
		return struct{}{}, nil
	})
	return err
}

var replicationStatuses = map[string]bool{
	ferry.ReplicationEnabled: true, ferry.ReplicationDisabled: true, ferry.ReplicationFailingOver: true,
	ferry.ReplicationFailedOver: true, ferry.ReplicationFailoverErr: true, ferry.ReplicationError: true,
	ferry.ReplicationNotCapable: true,
}

// SetReplicationStatus records the backend's replication_status and
// active_backend_id.
func (a *Adapter) SetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	const op = "storage.set_replication_status"
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		if !replicationStatuses[status] {
			return struct{}{}, perm(op, "unknown replication_status %q", status)
		}
		ns := a.st.Nodes[n.Name]
		ns.ReplicationStatus, ns.ActiveBackendID = status, activeBackendID
		return struct{}{}, nil
	})
	return err
}

func (a *Adapter) setFrozen(ctx context.Context, op, key, backend string, frozen bool) error {
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		a.st.Nodes[n.Name].Frozen = frozen
		return struct{}{}, nil
	})
	return err
}

// Freeze refuses management changes to the backend until Thaw; the
// database keeps serving its clients.
func (a *Adapter) Freeze(ctx context.Context, key, backend string) error {
	return a.setFrozen(ctx, "storage.freeze", key, backend, true)
}

// Thaw undoes Freeze.
func (a *Adapter) Thaw(ctx context.Context, key, backend string) error {
	return a.setFrozen(ctx, "storage.thaw", key, backend, false)
}

// Fence makes the node refuse every connection: its pg_hba.conf (outside
// PGDATA, so a restart keeps it) rejects everything, and the sessions it
// has are cut. It works on a node that does not run (an unreachable site):
// the file is written out of band and holds when the node comes back.
func (a *Adapter) Fence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.fence"
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		n, err := a.node(op, backend)
		if err != nil {
			return struct{}{}, err
		}
		ns := a.st.Nodes[n.Name]
		if ns.Fenced && epoch < ns.Epoch {
			return struct{}{}, perm(op, "backend %s is fenced under newer epoch %d", backend, ns.Epoch)
		}
		// A session opened before the new pg_hba.conf applies cuts the
		// others once it does.
		var sess *pgx.Conn
		if dial(ctx, op, n) == nil {
			sess, _ = a.connectNode(ctx, op, n)
		}
		if err := a.writeHBA(n.Dir, true); err != nil {
			if sess != nil {
				_ = sess.Close(context.Background())
			}
			return struct{}{}, drivers.Errorf(drivers.Retryable, op, "pg_hba.conf: %v", err)
		}
		ns.Fenced, ns.Epoch, ns.FencedAt = true, epoch, time.Now()
		if sess != nil {
			defer func() { _ = sess.Close(context.Background()) }()
			if err := a.reloadAndWait(ctx, op, n, false); err != nil {
				return struct{}{}, err
			}
			if _, err := sess.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`); err != nil {
				return struct{}{}, err
			}
		} else if a.running(ctx, n.DataDir()) {
			if err := a.reloadAndWait(ctx, op, n, false); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// reloadAndWait reloads a running node's configuration and waits until a
// new connection is accepted (accept) or refused (!accept).
func (a *Adapter) reloadAndWait(ctx context.Context, op string, n Node, accept bool) error {
	if _, err := a.pg(ctx, op, nil, "pg_ctl", "-D", n.DataDir(), "-s", "reload"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		c, err := a.connectNode(ctx, op, n)
		if err == nil {
			_ = c.Close(context.Background())
		}
		if (err == nil) == accept {
			return nil
		}
		select {
		case <-ctx.Done():
			return drivers.Errorf(drivers.Retryable, op, "node %s did not apply its new pg_hba.conf: %v", n.Name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Unfence lifts a fence, only under the epoch that set it, and never on a
// diverged old primary: it would be a second writable active. Resync first.
func (a *Adapter) Unfence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.unfence"
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		ns := a.st.Nodes[n.Name]
		if !ns.Fenced {
			return struct{}{}, nil
		}
		if ns.Epoch != epoch {
			return struct{}{}, perm(op, "backend %s is fenced under epoch %d, not %d", backend, ns.Epoch, epoch)
		}
		if ns.Diverged {
			return struct{}{}, perm(op, "backend %s was replaced by a forced promote: resync it before unfencing", backend)
		}
		if err := a.writeHBA(n.Dir, false); err != nil {
			return struct{}{}, drivers.Errorf(drivers.Retryable, op, "pg_hba.conf: %v", err)
		}
		if err := a.reloadAndWait(ctx, op, n, true); err != nil {
			return struct{}{}, err
		}
		ns.Fenced, ns.Epoch, ns.FencedAt = false, 0, time.Time{}
		return struct{}{}, nil
	})
	return err
}

// Resync rewinds the node onto the active's history with pg_rewind
// (discarding what it alone held) and starts it as the active's standby.
// A fence stays: a fenced standby replicates but serves no client until it
// is unfenced.
func (a *Adapter) Resync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	const op = "storage.resync"
	return mutate(ctx, a, op, key, backend, func() (drivers.ResyncResult, error) {
		res := drivers.ResyncResult{Discarded: map[string]int64{}}
		if err := a.checkResources(op, resources); err != nil {
			return res, err
		}
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return res, err
		}
		if a.st.Active == n.Name {
			return res, perm(op, "%s is active on %s: nothing to resync from", a.cfg.Cluster, backend)
		}
		src := a.nodes[a.st.Active]
		p, err := a.probe(ctx, op, src)
		if err != nil {
			return res, err
		}
		if p.recovery {
			return res, perm(op, "the active %s is still in recovery: promote it first", src.Name)
		}
		// pg_rewind reads the source's timeline from its control file, which
		// a promoted node updates only at its first checkpoint: without one,
		// a fresh promote looks like "no rewind required".
		if err := a.checkpoint(ctx, op, src); err != nil {
			return res, err
		}
		if err := a.stop(ctx, op, n.DataDir(), "fast"); err != nil {
			if err := a.stop(ctx, op, n.DataDir(), "immediate"); err != nil {
				return res, err
			}
		}
		_ = os.Remove(filepath.Join(n.DataDir(), "standby.signal"))
		source := fmt.Sprintf("host=%s port=%d user=%s dbname=%s connect_timeout=5", src.Host, src.Port, a.cfg.User, a.cfg.Database)
		if _, err := a.pg(ctx, op, nil, "pg_rewind", "--target-pgdata="+n.DataDir(), "--source-server="+source); err != nil {
			return res, err
		}
		if err := a.becomeStandby(ctx, op, n, src); err != nil {
			return res, err
		}
		ns := a.st.Nodes[n.Name]
		ns.Role, ns.Diverged = roleStandby, false
		for _, r := range resources {
			res.Discarded[r] = -1 // pg_rewind discards WAL, not countable writes
		}
		return res, nil
	})
}

func (a *Adapter) checkpoint(ctx context.Context, op string, n Node) error {
	c, err := a.connectNode(ctx, op, n)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.Background()) }()
	_, err = c.Exec(ctx, `CHECKPOINT`)
	return err
}

// TestFailoverStart clones the node's data with pg_basebackup and starts the
// clone on a port of its own (inside the bubble when CloneCommand says so),
// as a primary of nothing: writes to it reach no one, and the node keeps
// replicating.
func (a *Adapter) TestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	const op = "storage.test_failover_start"
	return mutate(ctx, a, op, key, backend, func() ([]string, error) {
		if err := a.checkResources(op, resources); err != nil {
			return nil, err
		}
		n, err := a.reachableNode(ctx, op, backend)
		if err != nil {
			return nil, err
		}
		var ids []string
		for range resources {
			a.st.NextID++
			id := fmt.Sprintf("clone-%d", a.st.NextID)
			cl, err := a.clone(ctx, op, n, id)
			if cl != nil {
				a.st.Clones[id] = cl
			}
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		return ids, nil
	})
}

func (a *Adapter) clone(ctx context.Context, op string, n Node, id string) (*cloneState, error) {
	var prefix []string
	host := a.cfg.CloneHost
	if a.cfg.CloneCommand != nil {
		prefix, host = a.cfg.CloneCommand(n.Name)
	}
	dir := filepath.Join(a.cfg.CloneDir, id)
	if err := a.mkdirOwned(dir); err != nil {
		return nil, drivers.Errorf(drivers.Retryable, op, "clone dir: %v", err)
	}
	cl := &cloneState{ID: id, Backend: n.Name, Dir: dir, Host: host}
	if _, err := a.pg(ctx, op, nil, "pg_basebackup", "-h", n.Host, "-p", strconv.Itoa(n.Port), "-U", a.cfg.User,
		"-D", filepath.Join(dir, "data"), "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return cl, err
	}
	for _, f := range []string{"standby.signal", "recovery.signal"} {
		_ = os.Remove(filepath.Join(dir, "data", f))
	}
	port, err := freePort(host)
	if err != nil && prefix == nil {
		return cl, drivers.Errorf(drivers.Retryable, op, "free port: %v", err)
	}
	if port == 0 {
		port = n.Port // inside a bubble the node's own port is free
	}
	cl.Port = port
	if err := a.writeNodeConf(dir, id, host, port, nil); err != nil {
		return cl, drivers.Errorf(drivers.Retryable, op, "node.conf: %v", err)
	}
	if err := a.writeOwned(filepath.Join(dir, "pg_hba.conf"), strings.Join(a.cfg.HBA, "\n")+"\n"); err != nil {
		return cl, drivers.Errorf(drivers.Retryable, op, "pg_hba.conf: %v", err)
	}
	return cl, a.start(ctx, op, prefix, dir)
}

// TestFailoverStop stops and deletes clones; unknown ids are already gone.
func (a *Adapter) TestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	const op = "storage.test_failover_stop"
	_, err := mutate(ctx, a, op, key, backend, func() (struct{}, error) {
		if _, err := a.reachableNode(ctx, op, backend); err != nil {
			return struct{}{}, err
		}
		for _, id := range clones {
			cl, ok := a.st.Clones[id]
			if !ok || cl.Backend != backend {
				continue
			}
			if err := a.stop(ctx, op, filepath.Join(cl.Dir, "data"), "immediate"); err != nil {
				return struct{}{}, err
			}
			if err := os.RemoveAll(cl.Dir); err != nil {
				return struct{}{}, drivers.Errorf(drivers.Retryable, op, "remove %s: %v", cl.Dir, err)
			}
			delete(a.st.Clones, id)
		}
		return struct{}{}, nil
	})
	return err
}

// CloneAddr tells where a drill clone listens.
func (a *Adapter) CloneAddr(id string) (host string, port int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cl, ok := a.st.Clones[id]
	if !ok {
		return "", 0, errors.New("no clone " + id)
	}
	return cl.Host, cl.Port, nil
}
