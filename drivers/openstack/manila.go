package openstack

// Manila share replication behind the storage port. A resource is a share,
// named by its Manila name; a Ferry share backend is a manila-share backend
// (Backend.Host, "host@backend") in an availability zone, and a share's
// replica is on a backend when the replica's host (host@backend#pool)
// without the pool is Backend.Host.
//
// Manila replicates shares within one deployment: the two sites of a share
// backend pair are two availability zones of one Manila (one cloud and
// region, or two Ferry sites naming the same one). A share found at several
// sites is reported once.
//
// What Manila's model has and what it has not, call by call:
//
//   - Promote, EnableReplication, DisableReplication, Resync, SnapshotGroup
//     and the drill clones are Manila's own calls (2.11+).
//   - Demote is a checked no-op: Manila has no demote; its promote makes
//     the old active a secondary itself, and Promote verifies it did.
//   - Freeze and Fence refuse: Manila has no freeze of a backend, and access
//     rules belong to the share, not a replica, so read-only rules would
//     fence the promoted replica too. Thaw and Unfence have nothing to
//     undo and succeed.
//   - Suspend and Resume refuse: Manila cannot pause a replica.
//   - FailoverCompleted and SetReplicationStatus refuse: they are Cinder's
//     backend bookkeeping, which Manila does not keep; a share failover
//     (promote per share) never calls them for a backend without cluster
//     members.
//   - No sequence numbers, lag or last consistent point: Manila's API
//     shows replica_state only (in_sync means within the driver's RPO).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/replicas"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/shares"
	"github.com/gophercloud/gophercloud/v2/openstack/sharedfilesystems/v2/snapshots"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// Manila's replica states.
const (
	manilaActive    = "active"
	manilaInSync    = "in_sync"
	manilaOutOfSync = "out_of_sync"
	manilaError     = "error"
)

// shareDrillPrefix names the shares and snapshots a drill makes, so that
// TestFailoverStop deletes only what a drill made.
const shareDrillPrefix = "ferry-drill-"

// shareBackend is a configured Manila backend with its site's client.
type shareBackend struct {
	name string
	cfg  Backend
	c    *svcClient
}

func (a *Adapter) shareBackend(ctx context.Context, op, name string) (shareBackend, error) {
	cfg, ok := a.cfg.Backends[name]
	if !ok || !cfg.share() {
		return shareBackend{}, drivers.Errorf(drivers.Permanent, op, "unknown share backend %q", name)
	}
	c, err := a.client(ctx, op, cfg.Site, svcShare)
	if err != nil {
		return shareBackend{}, err
	}
	return shareBackend{name: name, cfg: cfg, c: c}, nil
}

// sc is the backend's client at the negotiated microversion.
func (b shareBackend) sc() *gophercloud.ServiceClient { return manilaAt(b.c) }

// needRepl says, as a Permanent error, that what needs the replicas API
// (2.11+) cannot be done at this site's microversion.
func (b shareBackend) needRepl(op, what string) error {
	if err := b.c.ver.need(mvShareRepl, what); err != nil {
		return drivers.Errorf(drivers.Permanent, op, "site %s: %v", b.cfg.Site, err)
	}
	return nil
}

// holds says whether a replica is on the backend. A replica the scheduler
// has not placed yet (no host) counts as on the backend of its zone, so
// that a retry does not create a second one.
func (b shareBackend) holds(r replicas.Replica) bool {
	h := poolless(r.Host)
	if h == "" {
		return r.AvailabilityZone == b.cfg.AvailabilityZone
	}
	return h == b.cfg.Host
}

// poolless is host@backend of host@backend#pool.
func poolless(host string) string {
	h, _, _ := strings.Cut(host, "#")
	return h
}

// ShareMicroversions reports the Manila microversion range of a site and
// the highest one Ferry uses there (2.75+ lets promote wait for quiesced
// writes; Zed stops at 2.73).
func (a *Adapter) ShareMicroversions(ctx context.Context, site string) (minV, maxV, usable string, err error) {
	c, err := a.client(ctx, "openstack.microversions", site, svcShare)
	if err != nil {
		return "", "", "", err
	}
	return c.ver.min.String(), c.ver.max.String(), c.ver.usable().String(), nil
}

// findShare finds the one share of a name in any project (nil if none).
func (a *Adapter) findShare(ctx context.Context, sc *gophercloud.ServiceClient, name string) (*shares.Share, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := shares.ListDetail(sc, shares.ListOpts{AllTenants: true, Name: name}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list shares named %s: %w", name, err)
	}
	all, err := shares.ExtractShares(pages)
	if err != nil {
		return nil, err
	}
	var found []shares.Share
	for _, s := range all {
		if s.Name == name {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return &found[0], nil
	}
	ids := make([]string, len(found))
	for i, s := range found {
		ids[i] = s.ID
	}
	return nil, drivers.Errorf(drivers.Permanent, "", "%d shares are named %s (%s): Ferry names a share by a unique name", len(found), name, strings.Join(ids, ", "))
}

// listShareReplicas lists a share's replicas.
func (a *Adapter) listShareReplicas(ctx context.Context, sc *gophercloud.ServiceClient, shareID string) ([]replicas.Replica, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := replicas.ListDetail(sc, replicas.ListOpts{ShareID: shareID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list replicas of share %s: %w", shareID, err)
	}
	return replicas.ExtractReplicas(pages)
}

// replicatedShare finds a share at the backend's site and its replicas; a
// share of a type without replication_type is refused.
func (a *Adapter) replicatedShare(ctx context.Context, op string, b shareBackend, name string) (*shares.Share, []replicas.Replica, error) {
	sc := b.sc()
	sh, err := a.findShare(ctx, sc, name)
	if err != nil {
		return nil, nil, err
	}
	if sh == nil {
		return nil, nil, drivers.Errorf(drivers.Permanent, op, "no share named %s at site %s", name, b.cfg.Site)
	}
	if sh.ReplicationType == "" {
		return nil, nil, drivers.Errorf(drivers.Permanent, op, "share %s (type %s) is not replicated: its share type has no replication_type", name, sh.ShareTypeName)
	}
	reps, err := a.listShareReplicas(ctx, sc, sh.ID)
	return sh, reps, err
}

// shareReplicaOn is the share's one replica on the backend (nil if none).
func shareReplicaOn(op string, b shareBackend, name string, reps []replicas.Replica) (*replicas.Replica, error) {
	var on []replicas.Replica
	for _, r := range reps {
		if b.holds(r) {
			on = append(on, r)
		}
	}
	switch len(on) {
	case 0:
		return nil, nil
	case 1:
		return &on[0], nil
	}
	return nil, drivers.Errorf(drivers.Permanent, op, "share %s has %d replicas on %s (%s): Ferry expects at most one per backend", name, len(on), b.name, b.cfg.Host)
}

func activeShareReplica(reps []replicas.Replica) *replicas.Replica {
	for i := range reps {
		if reps[i].State == manilaActive {
			return &reps[i]
		}
	}
	return nil
}

// shareReplicaState maps Manila's replica_state (and a replica in status
// error) to Ferry's. A replica Manila has not yet given a state (being
// created) is not in sync.
func shareReplicaState(r replicas.Replica) string {
	if r.Status == "error" || r.State == manilaError {
		return ferry.ReplicaError
	}
	switch r.State {
	case manilaActive:
		return ferry.ReplicaActive
	case manilaInSync:
		return ferry.ReplicaInSync
	}
	return ferry.ReplicaOutOfSync
}

// shareBackendOf names the configured share backend of a host, with its
// site; an unconfigured host is reported as itself, at the site that
// showed it.
func (a *Adapter) shareBackendOf(site, host string) (name, at string) {
	h := poolless(host)
	for n, b := range a.cfg.Backends {
		if b.share() && b.Host == h && h != "" {
			return n, b.Site
		}
	}
	return h, site
}

// shareSites are the sites with a configured share backend, in order.
func (a *Adapter) shareSites() []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range a.cfg.Backends {
		if b.share() && !seen[b.Site] {
			seen[b.Site] = true
			out = append(out, b.Site)
		}
	}
	sort.Strings(out)
	return out
}

// manilaReplicationStatus reports every replica of the shares among
// resources; the names Manila does not know are returned as rest (they
// are Cinder's volumes). Manila shows no lag and no last consistent point
// (replica_state in_sync means "within the driver's RPO"), so Lag,
// LastConsistent and Seq stay zero.
func (a *Adapter) manilaReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, []string, error) {
	const op = "storage.replication_status"
	var out []drivers.ReplicaStatus
	found := map[string]bool{}
	seen := map[string]bool{} // share ids: two sites may name one Manila
	for _, site := range a.shareSites() {
		c, err := a.client(ctx, op, site, svcShare)
		if err != nil {
			return nil, nil, err
		}
		sc := manilaAt(c)
		for _, name := range resources {
			if found[name] {
				continue
			}
			sh, err := a.findShare(ctx, sc, name)
			if err != nil {
				return nil, nil, classifyOp(ctx, op, err)
			}
			if sh == nil {
				continue
			}
			found[name] = true
			if seen[sh.ID] {
				continue
			}
			seen[sh.ID] = true
			if err := c.ver.need(mvShareRepl, "reading the replicas of share "+name); err != nil {
				return nil, nil, drivers.Errorf(drivers.Permanent, op, "site %s: %v", site, err)
			}
			reps, err := a.listShareReplicas(ctx, sc, sh.ID)
			if err != nil {
				return nil, nil, classify(ctx, op, err)
			}
			if len(reps) == 0 {
				// A share without replicas is its own only copy.
				be, at := a.shareBackendOf(site, sh.Host)
				state := ferry.ReplicaActive
				if sh.Status == "error" {
					state = ferry.ReplicaError
				}
				out = append(out, drivers.ReplicaStatus{Resource: name, Site: at, Backend: be, State: state})
				continue
			}
			sort.Slice(reps, func(i, j int) bool { return reps[i].Host < reps[j].Host })
			for _, r := range reps {
				be, at := a.shareBackendOf(site, r.Host)
				out = append(out, drivers.ReplicaStatus{Resource: name, Site: at, Backend: be, State: shareReplicaState(r)})
			}
		}
	}
	var rest []string
	for _, name := range resources {
		if !found[name] {
			rest = append(rest, name)
		}
	}
	return out, rest, nil
}

// shareService reads the backend's manila-share service (nil if Manila
// has none on its host).
func (a *Adapter) shareService(ctx context.Context, b shareBackend, host string) (*shareService, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	svcs, err := shareServices(ctx, b.sc(), b.c.ver.usable())
	if err != nil {
		return nil, fmt.Errorf("list manila-share services: %w", err)
	}
	for i := range svcs {
		if svcs[i].Host == host {
			return &svcs[i], nil
		}
	}
	return nil, nil
}

// shareServiceUp refuses, as Unreachable, work that Manila would hand to a
// manila-share that is down: Manila casts it to the service's queue and
// the replica waits (in replication_change, creating, ...) until the
// service returns, so waiting for it would hang.
func (a *Adapter) shareServiceUp(ctx context.Context, op string, b shareBackend, host, what string) error {
	s, err := a.shareService(ctx, b, host)
	if err != nil {
		return err
	}
	if s == nil {
		return drivers.Errorf(drivers.Permanent, op, "site %s has no manila-share service on %s (%s)", b.cfg.Site, host, what)
	}
	if s.State != "up" {
		return drivers.Errorf(drivers.Unreachable, op, "manila-share on %s is %s (no heartbeat within Manila's service_down_time): %s would wait until it returns", host, s.State, what)
	}
	return nil
}

// manilaBackendStatus reads the backend's manila-share service: it is
// reachable when Manila shows it up. Manila keeps no replication_status,
// active_backend_id or freeze per backend: ReplicationStatus says whether
// its pools report a replication_type (enabled) or not (not-capable).
func (a *Adapter) manilaBackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	const op = "storage.backend_status"
	b, err := a.shareBackend(ctx, op, backend)
	if err != nil {
		return drivers.BackendStatus{Backend: backend}, err
	}
	st := drivers.BackendStatus{Backend: backend, Site: b.cfg.Site}
	s, err := a.shareService(ctx, b, b.cfg.Host)
	if err != nil {
		return st, classify(ctx, op, err)
	}
	if s == nil {
		return st, drivers.Errorf(drivers.Permanent, op, "site %s has no manila-share service on %s", b.cfg.Site, b.cfg.Host)
	}
	st.Reachable = s.State == "up"
	st.Members = []drivers.MemberStatus{{Name: s.Host, Up: st.Reachable}}
	pools, err := a.shareBackendPools(ctx, b)
	if err != nil {
		return st, classify(ctx, op, err)
	}
	st.ReplicationStatus = ferry.ReplicationNotCapable
	for _, p := range pools {
		if p.Capabilities.ReplicationType != "" {
			st.ReplicationStatus = ferry.ReplicationEnabled
		}
	}
	return st, nil
}

// shareBackendPools are the scheduler's pools of the backend.
func (a *Adapter) shareBackendPools(ctx context.Context, b shareBackend) ([]sharePool, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	all, err := sharePools(ctx, b.sc())
	if err != nil {
		return nil, fmt.Errorf("list the scheduler's pools: %w", err)
	}
	var out []sharePool
	for _, p := range all {
		if poolless(p.Name) == b.cfg.Host {
			out = append(out, p)
		}
	}
	return out, nil
}

// manilaCapabilities reads the backend's pools as the scheduler reports
// them: replication when a pool has a replication_type, drills when it can
// snapshot and create shares from snapshots; both need the replicas API
// (2.11+). Freeze, fence and consistency groups are not Manila's (see the
// top of this file); nor are counted lost writes.
func (a *Adapter) manilaCapabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	const op = "storage.capabilities"
	b, err := a.shareBackend(ctx, op, backend)
	if err != nil {
		return drivers.Capabilities{}, err
	}
	pools, err := a.shareBackendPools(ctx, b)
	if err != nil {
		return drivers.Capabilities{}, classify(ctx, op, err)
	}
	var caps drivers.Capabilities
	if b.c.ver.need(mvShareRepl, "") != nil {
		return caps, nil
	}
	for _, p := range pools {
		caps.Replication = caps.Replication || p.Capabilities.ReplicationType != ""
		caps.TestFailover = caps.TestFailover || (p.Capabilities.SnapshotSupport && p.Capabilities.CreateShareFromSnapshotSupport)
	}
	return caps, nil
}

// settleShare polls check until it reports done, bounded by SettleTimeout and
// the caller's context. A typed error from check ends the wait; others
// are kept as the reason the wait timed out.
func (a *Adapter) settleShare(ctx context.Context, op, what string, check func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	for {
		done, err := check(ctx)
		var de *drivers.Error
		if errors.As(err, &de) {
			return err
		}
		if err == nil && done {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("timed out")
			}
			return drivers.Errorf(drivers.Retryable, op, "%s: not done after %s: %v", what, a.cfg.SettleTimeout, err)
		case <-time.After(pollEvery):
		}
	}
}

// manilaPromote makes each share's replica on backend the active one
// (POST /share-replicas/{id}/action promote) and waits until Manila shows
// it active and no other replica active. A replica already active there
// is left as it is. Manila's promote demotes the old active itself, with
// or without force: force only lets the promote go on when the old
// active's manila-share is down (Manila then records it as the driver
// reports it, e.g. out_of_sync). Manila cannot tell lost writes
// (LostWrites -1). quiesce_wait_time (2.75+) is sent only where usable;
// Zed (2.73) promotes without it, and the adapter logs that.
func (a *Adapter) manilaPromote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	const op = "storage.promote"
	return mutate(ctx, a, op, key, func() (drivers.PromoteResult, error) {
		res := drivers.PromoteResult{Points: []drivers.PromotedPoint{}}
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return res, err
		}
		if err := b.needRepl(op, "promoting a share replica"); err != nil {
			return res, err
		}
		for _, name := range resources {
			p, err := a.promoteShare(ctx, op, b, name, force)
			if err != nil {
				return res, err
			}
			res.Points = append(res.Points, p)
		}
		return res, nil
	})
}

func (a *Adapter) promoteShare(ctx context.Context, op string, b shareBackend, name string, force bool) (drivers.PromotedPoint, error) {
	point := drivers.PromotedPoint{Resource: name, LostWrites: -1}
	sh, reps, err := a.replicatedShare(ctx, op, b, name)
	if err != nil {
		return point, err
	}
	r, err := shareReplicaOn(op, b, name, reps)
	if err != nil {
		return point, err
	}
	if r == nil {
		return point, drivers.Errorf(drivers.Permanent, op, "share %s has no replica on %s (%s)", name, b.name, b.cfg.Host)
	}
	if r.State != manilaActive {
		if err := a.shareServiceUp(ctx, op, b, poolless(r.Host), "promoting the replica of "+name); err != nil {
			return point, err
		}
		if old := activeShareReplica(reps); old != nil && !force {
			if err := a.shareServiceUp(ctx, op, b, poolless(old.Host), "a promote without force hands over from the active replica of "+name); err != nil {
				return point, err
			}
		}
		body := map[string]any{}
		if !b.c.ver.usable().less(mvQuiesce) {
			// Let the old active's clients drain before Manila demotes it.
			body["quiesce_wait_time"] = 30
		} else {
			slog.InfoContext(ctx, "manila promote without quiesce_wait_time", "share", name, "site", b.cfg.Site,
				"usable", b.c.ver.usable().String(), "needs", mvQuiesce.String())
		}
		actx, cancel := a.withTimeout(ctx)
		_, err := replicaAction(actx, b.sc(), r.ID, map[string]any{"promote": body})
		cancel()
		if err != nil {
			return point, fmt.Errorf("promote replica %s of share %s on %s: %w", r.ID, name, b.cfg.Host, err)
		}
	}
	id := r.ID
	err = a.settleShare(ctx, op, "promote of share "+name+" on "+b.cfg.Host, func(ctx context.Context) (bool, error) {
		reps, err := a.listShareReplicas(ctx, b.sc(), sh.ID)
		if err != nil {
			return false, err
		}
		done := false
		for _, x := range reps {
			switch {
			case x.ID == id && (x.Status == "error" || x.State == manilaError):
				return false, drivers.Errorf(drivers.Permanent, op, "Manila put replica %s of share %s in status %s, replica_state %s while promoting it (see manila-share's log on %s)", id, name, x.Status, x.State, b.cfg.Host)
			case x.ID == id:
				done = x.State == manilaActive && x.Status == "available"
			case x.State == manilaActive:
				// Manila demotes the old active in the same update; until
				// then two replicas show active.
				return false, fmt.Errorf("replica %s on %s still shows active", x.ID, x.Host)
			}
		}
		return done, nil
	})
	if err != nil {
		return point, err
	}
	point.At = time.Now().UTC()
	return point, nil
}

// manilaDemote checks that each share's replica on backend exists and that
// another replica can take over; it changes nothing. Manila has no demote:
// its promote makes the old active a secondary in the same step (and casts
// its access rules to read-only for readable replicas), and Promote waits
// until no other replica shows active. A replica that is already no longer
// active (an earlier promote elsewhere) passes.
func (a *Adapter) manilaDemote(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.demote"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		if err := b.needRepl(op, "demoting a share replica"); err != nil {
			return struct{}{}, err
		}
		for _, name := range resources {
			_, reps, err := a.replicatedShare(ctx, op, b, name)
			if err != nil {
				return struct{}{}, err
			}
			r, err := shareReplicaOn(op, b, name, reps)
			if err != nil {
				return struct{}{}, err
			}
			if r == nil {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "share %s has no replica on %s (%s)", name, b.name, b.cfg.Host)
			}
			if r.State != manilaActive {
				continue
			}
			if len(reps) < 2 {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "share %s has no other replica to take over from %s: Manila demotes only by promoting another", name, b.cfg.Host)
			}
		}
		return struct{}{}, nil
	})
	return err
}

// manilaResync resyncs each share's replica on backend (POST
// /share-replicas/{id}/action resync): Manila asks the replica's driver to
// update it from the active one. Manila answers 202 and does the work in
// manila-share; it answers 200, doing nothing, when the replica is the
// active one, which is done here too (there is nothing to resync).
// Resync does not wait for in_sync (a real backend may take long; the
// replica_state shows it). Manila does not say what a resync discarded:
// Discarded stays empty.
func (a *Adapter) manilaResync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	const op = "storage.resync"
	return mutate(ctx, a, op, key, func() (drivers.ResyncResult, error) {
		res := drivers.ResyncResult{Discarded: map[string]int64{}}
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return res, err
		}
		if err := b.needRepl(op, "resyncing a share replica"); err != nil {
			return res, err
		}
		for _, name := range resources {
			_, reps, err := a.replicatedShare(ctx, op, b, name)
			if err != nil {
				return res, err
			}
			r, err := shareReplicaOn(op, b, name, reps)
			if err != nil {
				return res, err
			}
			if r == nil {
				return res, drivers.Errorf(drivers.Permanent, op, "share %s has no replica on %s (%s)", name, b.name, b.cfg.Host)
			}
			if _, err := a.resyncReplica(ctx, op, b, name, *r); err != nil {
				return res, err
			}
		}
		return res, nil
	})
}

// resyncReplica sends resync and checks what Manila's answer means: 200
// only for the active replica, 202 for a secondary.
func (a *Adapter) resyncReplica(ctx context.Context, op string, b shareBackend, name string, r replicas.Replica) (int, error) {
	if r.State != manilaActive {
		if err := a.shareServiceUp(ctx, op, b, poolless(r.Host), "resyncing the replica of "+name); err != nil {
			return 0, err
		}
	}
	actx, cancel := a.withTimeout(ctx)
	code, err := replicaAction(actx, b.sc(), r.ID, map[string]any{"resync": nil})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("resync replica %s of share %s on %s: %w", r.ID, name, b.cfg.Host, err)
	}
	if code == http.StatusOK && r.State != manilaActive {
		return code, drivers.Errorf(drivers.Permanent, op, "Manila answered resync of replica %s of share %s with 200 (nothing to do), but the replica was %s, not active", r.ID, name, r.State)
	}
	return code, nil
}

// manilaSync resyncs each share's secondaries that are not in_sync (Manila
// also updates them on its own every replica_state_update_interval) and
// waits until they are; it reports the replicas afterwards. The shares'
// active replicas must be on backend. A replica still not in_sync when the
// settle time is up is a Retryable error: the caller's retry is the wait.
func (a *Adapter) manilaSync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.sync"
	return mutate(ctx, a, op, key, func() ([]drivers.ReplicaStatus, error) {
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return nil, err
		}
		if err := b.needRepl(op, "syncing share replicas"); err != nil {
			return nil, err
		}
		ids := map[string]string{}
		for _, name := range resources {
			sh, reps, err := a.replicatedShare(ctx, op, b, name)
			if err != nil {
				return nil, err
			}
			act := activeShareReplica(reps)
			if act == nil || !b.holds(*act) {
				return nil, drivers.Errorf(drivers.Permanent, op, "the active replica of share %s is not on %s (%s)", name, b.name, b.cfg.Host)
			}
			ids[name] = sh.ID
			for _, r := range reps {
				if r.State == manilaOutOfSync || r.State == manilaError {
					if _, err := a.resyncReplica(ctx, op, b, name, r); err != nil {
						return nil, err
					}
				}
			}
		}
		err = a.settleShare(ctx, op, "sync of "+strings.Join(resources, ", "), func(ctx context.Context) (bool, error) {
			var behind []string
			for _, name := range resources {
				reps, err := a.listShareReplicas(ctx, b.sc(), ids[name])
				if err != nil {
					return false, err
				}
				for _, r := range reps {
					if r.State != manilaActive && r.State != manilaInSync {
						behind = append(behind, fmt.Sprintf("%s on %s is %s", name, poolless(r.Host), r.State))
					}
				}
			}
			if len(behind) > 0 {
				return false, errors.New(strings.Join(behind, "; "))
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		st, _, err := a.manilaReplicationStatus(ctx, resources)
		return st, err
	})
}

// manilaEnableReplication creates a replica of each share in target's
// availability zone (POST /share-replicas) unless one is on target, and
// waits until Manila has it available. The share's active replica must be
// on backend.
func (a *Adapter) manilaEnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	const op = "storage.enable_replication"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		t, err := a.shareBackend(ctx, op, target)
		if err != nil {
			return struct{}{}, err
		}
		if err := b.needRepl(op, "creating a share replica"); err != nil {
			return struct{}{}, err
		}
		for _, name := range resources {
			sh, reps, err := a.replicatedShare(ctx, op, b, name)
			if err != nil {
				return struct{}{}, err
			}
			act := activeShareReplica(reps)
			if act == nil || !b.holds(*act) {
				where := "none"
				if act != nil {
					where = act.Host
				}
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "the active replica of share %s is not on %s (%s) but %s", name, b.name, b.cfg.Host, where)
			}
			r, err := shareReplicaOn(op, t, name, reps)
			if err != nil {
				return struct{}{}, err
			}
			id := ""
			if r != nil {
				id = r.ID
			} else {
				if err := a.shareServiceUp(ctx, op, t, t.cfg.Host, "creating a replica of "+name); err != nil {
					return struct{}{}, err
				}
				actx, cancel := a.withTimeout(ctx)
				created, err := replicas.Create(actx, t.sc(), replicas.CreateOpts{ShareID: sh.ID, AvailabilityZone: t.cfg.AvailabilityZone}).Extract()
				cancel()
				if err != nil {
					return struct{}{}, fmt.Errorf("create a replica of share %s in zone %s: %w", name, t.cfg.AvailabilityZone, err)
				}
				id = created.ID
			}
			err = a.settleShare(ctx, op, "replica of "+name+" on "+t.cfg.Host, func(ctx context.Context) (bool, error) {
				gctx, cancel := a.withTimeout(ctx)
				defer cancel()
				x, err := replicas.Get(gctx, t.sc(), id).Extract()
				if err != nil {
					return false, err
				}
				switch {
				case x.Status == "error":
					return false, drivers.Errorf(drivers.Permanent, op, "Manila put the new replica %s of share %s in zone %s in error (no valid host in the zone's replication domain, or the driver failed: see manila-scheduler's and manila-share's logs)", id, name, t.cfg.AvailabilityZone)
				case x.Status == "available" && x.Host != "" && !t.holds(*x):
					return false, drivers.Errorf(drivers.Permanent, op, "Manila placed the replica %s of share %s on %s, not on %s: zone %s has another backend", id, name, x.Host, t.cfg.Host, t.cfg.AvailabilityZone)
				}
				return x.Status == "available", nil
			})
			if err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// manilaDisableReplication deletes each share's replica on target (DELETE
// /share-replicas/{id}) and waits until it is gone. It never deletes the
// active replica: one on target is refused.
func (a *Adapter) manilaDisableReplication(ctx context.Context, key, target string, resources []string) error {
	const op = "storage.disable_replication"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		t, err := a.shareBackend(ctx, op, target)
		if err != nil {
			return struct{}{}, err
		}
		if err := t.needRepl(op, "deleting a share replica"); err != nil {
			return struct{}{}, err
		}
		for _, name := range resources {
			_, reps, err := a.replicatedShare(ctx, op, t, name)
			if err != nil {
				return struct{}{}, err
			}
			r, err := shareReplicaOn(op, t, name, reps)
			if err != nil {
				return struct{}{}, err
			}
			if r == nil {
				continue
			}
			if r.State == manilaActive {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "the replica of share %s on %s (%s) is the active one: promote another before removing it", name, target, t.cfg.Host)
			}
			if r.Status != "deleting" {
				actx, cancel := a.withTimeout(ctx)
				err := replicas.Delete(actx, t.sc(), r.ID).ExtractErr()
				cancel()
				if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					return struct{}{}, fmt.Errorf("delete replica %s of share %s on %s: %w", r.ID, name, t.cfg.Host, err)
				}
			}
			id := r.ID
			err = a.settleShare(ctx, op, "deletion of the replica of "+name+" on "+t.cfg.Host, func(ctx context.Context) (bool, error) {
				gctx, cancel := a.withTimeout(ctx)
				defer cancel()
				x, err := replicas.Get(gctx, t.sc(), id).Extract()
				if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					return true, nil
				}
				if err != nil {
					return false, err
				}
				if x.Status == "error_deleting" {
					return false, drivers.Errorf(drivers.Permanent, op, "Manila could not delete replica %s of share %s (error_deleting: see manila-share's log on %s)", id, name, t.cfg.Host)
				}
				return false, fmt.Errorf("replica %s is %s", id, x.Status)
			})
			if err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// shareKeyTag is a short, stable tag of an idempotency key for the names of
// what a call creates, so that a retry under the same key finds them.
func shareKeyTag(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:5])
}

// snapshotShare takes (or, on a retry, finds) the named snapshot of a
// share and waits until it is available. A snapshot of a replicated share
// is Manila's replicated snapshot: taken on the active replica, with an
// instance on every replica.
func (a *Adapter) snapshotShare(ctx context.Context, op string, b shareBackend, sh *shares.Share, snapName string) (*snapshots.Snapshot, error) {
	sc := b.sc()
	lctx, cancel := a.withTimeout(ctx)
	pages, err := snapshots.ListDetail(sc, snapshots.ListOpts{AllTenants: true, ShareID: sh.ID, Name: snapName}).AllPages(lctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("list snapshots of share %s: %w", sh.Name, err)
	}
	existing, err := snapshots.ExtractSnapshots(pages)
	if err != nil {
		return nil, err
	}
	var id string
	for _, s := range existing {
		if s.Name == snapName && s.ShareID == sh.ID {
			id = s.ID
		}
	}
	if id == "" {
		actx, cancel := a.withTimeout(ctx)
		s, err := snapshots.Create(actx, sc, snapshots.CreateOpts{ShareID: sh.ID, Name: snapName}).Extract()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("snapshot share %s: %w", sh.Name, err)
		}
		id = s.ID
	}
	var snap *snapshots.Snapshot
	err = a.settleShare(ctx, op, "snapshot "+snapName+" of share "+sh.Name, func(ctx context.Context) (bool, error) {
		gctx, cancel := a.withTimeout(ctx)
		defer cancel()
		s, err := snapshots.Get(gctx, sc, id).Extract()
		if err != nil {
			return false, err
		}
		if s.Status == "error" {
			return false, drivers.Errorf(drivers.Permanent, op, "Manila put snapshot %s of share %s in error (see manila-share's log)", id, sh.Name)
		}
		snap = s
		return s.Status == "available", nil
	})
	return snap, err
}

// manilaSnapshotGroup snapshots each share on its active replica, which
// must be on backend, and waits until every snapshot is available. Manila
// snapshots shares one by one (share groups could do better, but a
// replicated share cannot be in one), so the group is consistent per
// share, not across shares. The snapshot's ID is the shares' snapshot ids
// joined with commas, in resource order. Manila has no write sequence
// numbers: Seqs is empty.
func (a *Adapter) manilaSnapshotGroup(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	const op = "storage.snapshot_group"
	return mutate(ctx, a, op, key, func() (drivers.Snapshot, error) {
		out := drivers.Snapshot{Seqs: map[string]int64{}}
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return out, err
		}
		if err := b.needRepl(op, "snapshotting a replicated share"); err != nil {
			return out, err
		}
		var ids []string
		for _, name := range resources {
			sh, reps, err := a.replicatedShare(ctx, op, b, name)
			if err != nil {
				return out, err
			}
			if act := activeShareReplica(reps); act == nil || !b.holds(*act) {
				return out, drivers.Errorf(drivers.Permanent, op, "the active replica of share %s is not on %s (%s): Manila snapshots the active replica", name, b.name, b.cfg.Host)
			}
			s, err := a.snapshotShare(ctx, op, b, sh, "ferry-snap-"+shareKeyTag(key)+"-"+name)
			if err != nil {
				return out, err
			}
			ids = append(ids, s.ID)
		}
		out.ID = strings.Join(ids, ",")
		out.Taken = time.Now().UTC()
		return out, nil
	})
}

// manilaTestFailoverStart clones each share for a drill: a replicated
// snapshot of the share (Manila takes it on the active replica and keeps
// an instance on every replica, the one on backend included), then a new
// share from it in backend's availability zone, which the scheduler
// places on backend (one replication domain). Manila allows a zone other
// than the parent share's only with use_scheduler_creating_share_from_snapshot
// = True; without it Manila refuses and so does this call. It returns the
// clone shares' ids; replication of the shares goes on.
func (a *Adapter) manilaTestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	const op = "storage.test_failover_start"
	return mutate(ctx, a, op, key, func() ([]string, error) {
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return nil, err
		}
		if err := b.needRepl(op, "a drill clone of a replicated share"); err != nil {
			return nil, err
		}
		clones := []string{}
		for _, name := range resources {
			sh, reps, err := a.replicatedShare(ctx, op, b, name)
			if err != nil {
				return nil, err
			}
			r, err := shareReplicaOn(op, b, name, reps)
			if err != nil {
				return nil, err
			}
			if r == nil {
				return nil, drivers.Errorf(drivers.Permanent, op, "share %s has no replica on %s (%s) to clone", name, b.name, b.cfg.Host)
			}
			cloneName := shareDrillPrefix + shareKeyTag(key) + "-" + name
			snap, err := a.snapshotShare(ctx, op, b, sh, cloneName)
			if err != nil {
				return nil, err
			}
			id, err := a.cloneShare(ctx, op, b, sh, snap, cloneName)
			if err != nil {
				return nil, err
			}
			clones = append(clones, id)
		}
		return clones, nil
	})
}

// cloneShare creates (or, on a retry, finds) the share cloneName from snap
// in b's zone and waits until it is available on b.
func (a *Adapter) cloneShare(ctx context.Context, op string, b shareBackend, sh *shares.Share, snap *snapshots.Snapshot, cloneName string) (string, error) {
	sc := b.sc()
	existing, err := a.findShare(ctx, sc, cloneName)
	if err != nil {
		return "", err
	}
	id := ""
	if existing != nil {
		id = existing.ID
	} else {
		actx, cancel := a.withTimeout(ctx)
		c, err := shares.Create(actx, sc, shares.CreateOpts{
			Name: cloneName, ShareProto: sh.ShareProto, Size: sh.Size, SnapshotID: snap.ID,
			AvailabilityZone: b.cfg.AvailabilityZone,
			Description:      "Ferry drill clone of share " + sh.Name,
		}).Extract()
		cancel()
		if err != nil {
			if gophercloud.ResponseCodeIs(err, http.StatusBadRequest) && strings.Contains(err.Error(), "availability zone") {
				return "", drivers.Errorf(drivers.Permanent, op, "Manila refuses a share from a snapshot of %s in zone %s (the parent's zone is %s): a drill clone at the DR site needs use_scheduler_creating_share_from_snapshot = True in manila.conf: %v", sh.Name, b.cfg.AvailabilityZone, sh.AvailabilityZone, err)
			}
			return "", fmt.Errorf("create drill clone %s of share %s: %w", cloneName, sh.Name, err)
		}
		id = c.ID
	}
	err = a.settleShare(ctx, op, "drill clone "+cloneName, func(ctx context.Context) (bool, error) {
		gctx, cancel := a.withTimeout(ctx)
		defer cancel()
		s, err := shares.Get(gctx, sc, id).Extract()
		if err != nil {
			return false, err
		}
		switch {
		case s.Status == "error":
			return false, drivers.Errorf(drivers.Permanent, op, "Manila put drill clone %s (%s) of share %s in error (no valid host in zone %s, or the driver failed: see manila-scheduler's and manila-share's logs)", cloneName, id, sh.Name, b.cfg.AvailabilityZone)
		case s.Status == "available" && poolless(s.Host) != b.cfg.Host:
			return false, drivers.Errorf(drivers.Permanent, op, "Manila placed drill clone %s of share %s on %s, not on %s", cloneName, sh.Name, s.Host, b.cfg.Host)
		}
		return s.Status == "available", nil
	})
	return id, err
}

// manilaTestFailoverStop deletes a drill's clone shares and the snapshots
// they were made from, and waits until Manila has them gone. It deletes
// only what a drill made (names starting ferry-drill-); a clone already
// gone is done.
func (a *Adapter) manilaTestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	const op = "storage.test_failover_stop"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		b, err := a.shareBackend(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		sc := b.sc()
		for _, id := range clones {
			gctx, cancel := a.withTimeout(ctx)
			s, err := shares.Get(gctx, sc, id).Extract()
			cancel()
			if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				continue
			}
			if err != nil {
				return struct{}{}, fmt.Errorf("read drill clone %s: %w", id, err)
			}
			if !strings.HasPrefix(s.Name, shareDrillPrefix) {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "share %s (%s) is not a drill clone (its name does not start with %s): not deleting it", id, s.Name, shareDrillPrefix)
			}
			if err := a.manilaDeleteAndWait(ctx, op, "drill clone "+s.Name, func(ctx context.Context) error {
				return shares.Delete(ctx, sc, id).ExtractErr()
			}, func(ctx context.Context) (string, error) {
				x, err := shares.Get(ctx, sc, id).Extract()
				if err != nil {
					return "", err
				}
				return x.Status, nil
			}); err != nil {
				return struct{}{}, err
			}
			if s.SnapshotID == "" {
				continue
			}
			gctx, cancel = a.withTimeout(ctx)
			snap, err := snapshots.Get(gctx, sc, s.SnapshotID).Extract()
			cancel()
			if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				continue
			}
			if err != nil {
				return struct{}{}, fmt.Errorf("read snapshot %s of drill clone %s: %w", s.SnapshotID, s.Name, err)
			}
			if !strings.HasPrefix(snap.Name, shareDrillPrefix) {
				continue // not the drill's own snapshot
			}
			if err := a.manilaDeleteAndWait(ctx, op, "drill snapshot "+snap.Name, func(ctx context.Context) error {
				return snapshots.Delete(ctx, sc, snap.ID).ExtractErr()
			}, func(ctx context.Context) (string, error) {
				x, err := snapshots.Get(ctx, sc, snap.ID).Extract()
				if err != nil {
					return "", err
				}
				return x.Status, nil
			}); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// manilaDeleteAndWait deletes a share or snapshot unless it is being deleted and
// waits until reading it answers 404.
func (a *Adapter) manilaDeleteAndWait(ctx context.Context, op, what string, del func(context.Context) error, status func(context.Context) (string, error)) error {
	gctx, cancel := a.withTimeout(ctx)
	st, err := status(gctx)
	cancel()
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if st != "deleting" {
		dctx, cancel := a.withTimeout(ctx)
		err := del(dctx)
		cancel()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return fmt.Errorf("delete %s: %w", what, err)
		}
	}
	return a.settleShare(ctx, op, "deletion of "+what, func(ctx context.Context) (bool, error) {
		gctx, cancel := a.withTimeout(ctx)
		defer cancel()
		st, err := status(gctx)
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if st == "error_deleting" {
			return false, drivers.Errorf(drivers.Permanent, op, "Manila could not delete %s (error_deleting: see manila-share's log)", what)
		}
		return false, fmt.Errorf("%s is %s", what, st)
	})
}

// refuseShare is the Permanent error of a call Manila has no equivalent for.
func refuseShare(op, backend, why string) error {
	return drivers.Errorf(drivers.Permanent, op, "share backend %s: %s", backend, why)
}

// manilaFreeze refuses: Manila has no freeze of a backend's management
// plane (disabling the service only stops the scheduler placing new
// shares there).
func (a *Adapter) manilaFreeze(ctx context.Context, key, backend string) error {
	return refuseShare("storage.freeze", backend, "Manila has no freeze of a share backend; in an unplanned failover, fence the old site out of band (stop its file servers, cut its storage network), then fail over with `ferry failover GROUP --unplanned --fenced-out-of-band HOW`")
}

// manilaThaw has nothing to undo: Ferry never freezes a share backend.
func (a *Adapter) manilaThaw(ctx context.Context, key, backend string) error {
	if !a.isShare(backend) {
		return drivers.Errorf(drivers.Permanent, "storage.thaw", "unknown share backend %q", backend)
	}
	return nil
}

// manilaFence refuses: Manila cannot cut one backend's replicas off from
// writes. Access rules belong to the share, not to a replica, so making
// them read-only would fence the replica about to be promoted too; Manila
// itself casts an old active's rules to read-only when another replica is
// promoted (readable replication).
func (a *Adapter) manilaFence(ctx context.Context, key, backend string, epoch int64) error {
	return refuseShare("storage.fence", backend, "Manila cannot fence a backend: access rules belong to the share, so read-only rules would fence the promoted replica too; Manila's promote itself turns the old active into a read-only secondary; in an unplanned failover, fence the old site out of band (stop its file servers, cut its storage network), then fail over with `ferry failover GROUP --unplanned --fenced-out-of-band HOW`")
}

// manilaUnfence has nothing to undo: Ferry never fences a share backend.
func (a *Adapter) manilaUnfence(ctx context.Context, key, backend string, epoch int64) error {
	if !a.isShare(backend) {
		return drivers.Errorf(drivers.Permanent, "storage.unfence", "unknown share backend %q", backend)
	}
	return nil
}

// manilaFailoverCompleted checks the member: failover_completed is Cinder's message
// to an active-active cluster's members; a Manila promote is one call per
// share, which every manila-share of the backend then serves from the
// database. What is left to check is that the member's manila-share is up.
func (a *Adapter) manilaFailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	const op = "storage.failover_completed"
	b, err := a.shareBackend(ctx, op, backend)
	if err != nil {
		return err
	}
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	svcs, err := shareServices(ctx, b.sc(), b.c.ver.usable())
	if err != nil {
		return classify(ctx, op, fmt.Errorf("list manila-share services: %w", err))
	}
	var hosts []string
	for _, s := range svcs {
		hosts = append(hosts, s.Host)
		if !isMember(s.Host, member) {
			continue
		}
		if s.State != "up" {
			return drivers.Errorf(drivers.Retryable, op, "share backend %s: member %s (manila-share on %s) is down: it cannot serve the promoted replicas", backend, member, s.Host)
		}
		return nil
	}
	return drivers.Errorf(drivers.Permanent, op, "share backend %s: %s is no manila-share service (services: %v)", backend, member, hosts)
}

// manilaSetReplicationStatus refuses: Manila keeps no replication_status
// or active_backend_id per backend (only replica_state per replica), and
// a share backend does not fail over as a whole.
func (a *Adapter) manilaSetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	return refuseShare("storage.set_replication_status", backend, "Manila keeps no replication_status per backend: share backends fail over share by share (promote)")
}

// manilaSuspendReplication refuses: Manila cannot pause a replica's
// replication.
func (a *Adapter) manilaSuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	return refuseShare("storage.suspend_replication", backend, "Manila cannot pause a share replica's replication (remove the replica with disable replication instead)")
}

// manilaResumeReplication refuses, as SuspendReplication does.
func (a *Adapter) manilaResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	return refuseShare("storage.resume_replication", backend, "Manila cannot pause or resume a share replica's replication")
}

// notYet is the Permanent error of an adapter path not built yet.
func notYet(op string) error {
	return drivers.Errorf(drivers.Permanent, op, "the openstack adapter does not do this yet")
}
