package openstack

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// failback is Cinder's backend_id for failing back to the primary.
const failback = "default"

// pollEvery is how often the adapter reads Cinder while it waits for a
// change Cinder makes asynchronously.
const pollEvery = 500 * time.Millisecond

type backendRef struct {
	name string
	cfg  Backend
	site *siteClient
}

func (b backendRef) clustered() bool { return b.cfg.Cluster != "" }

// cinderName is the host or cluster name Cinder knows the backend by.
func (b backendRef) cinderName() string {
	if b.clustered() {
		return b.cfg.Cluster
	}
	return b.cfg.Host
}

func (a *Adapter) backend(ctx context.Context, op, name string) (backendRef, error) {
	cfg, ok := a.cfg.Backends[name]
	if !ok {
		return backendRef{}, drivers.Errorf(drivers.Permanent, op, "unknown backend %q", name)
	}
	s, err := a.site(ctx, op, cfg.Site)
	if err != nil {
		return backendRef{}, err
	}
	b := backendRef{name: name, cfg: cfg, site: s}
	if b.clustered() {
		if err := s.ver.need(mvCluster, "a clustered backend ("+cfg.Cluster+")"); err != nil {
			return b, drivers.Errorf(drivers.Permanent, op, "site %s: %v", cfg.Site, err)
		}
	}
	return b, nil
}

// withTimeout bounds one read or action by the adapter's request timeout.
func (a *Adapter) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.cfg.Timeout)
}

// status reads a backend as Cinder shows it: the service (or the cluster
// and its member services).
func (a *Adapter) status(ctx context.Context, b backendRef) (drivers.BackendStatus, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	v := b.site.ver.usable()
	svcs, err := volumeServices(ctx, b.site.sc, v)
	if err != nil {
		return drivers.BackendStatus{}, err
	}
	st := drivers.BackendStatus{Backend: b.name, Site: b.cfg.Site}
	var members []service
	for _, s := range svcs {
		if (b.clustered() && str(s.Cluster) == b.cfg.Cluster) || (!b.clustered() && s.Host == b.cfg.Host) {
			members = append(members, s)
		}
	}
	if len(members) == 0 {
		return st, drivers.Errorf(drivers.Permanent, "", "site %s has no cinder-volume service %s %s", b.cfg.Site, map[bool]string{true: "in cluster", false: "on host"}[b.clustered()], b.cinderName())
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Host < members[j].Host })
	for _, m := range members {
		st.Members = append(st.Members, drivers.MemberStatus{Name: m.Host, ActiveBackendID: str(m.ActiveBackendID), Up: m.State == "up"})
		st.Reachable = st.Reachable || m.State == "up"
	}
	st.ReplicationStatus, st.ActiveBackendID, st.Frozen = members[0].ReplicationStatus, str(members[0].ActiveBackendID), members[0].Frozen
	if b.clustered() && !v.less(mvRepl) {
		cl, err := clusterDetail(ctx, b.site.sc, v, b.cfg.Cluster)
		if err != nil {
			return st, err
		}
		if cl != nil {
			st.ReplicationStatus, st.ActiveBackendID, st.Frozen = cl.ReplicationStatus, str(cl.ActiveBackendID), cl.Frozen
		}
	}
	return st, nil
}

// cinderCapabilities says what Cinder can do for the backend at the negotiated
// microversion. Group replication (consistency groups) and test failover
// are not wired yet.
func (a *Adapter) cinderCapabilities(ctx context.Context, backend string) (drivers.Capabilities, error) {
	const op = "storage.capabilities"
	// A replication target that is no service of its own can do what its
	// primary's service does for it.
	if cfg, ok := a.cfg.Backends[backend]; ok && cfg.TargetOf != "" && cfg.Host == "" && cfg.Cluster == "" {
		backend = cfg.TargetOf
	}
	b, err := a.backend(ctx, op, backend)
	if err != nil {
		return drivers.Capabilities{}, err
	}
	st, err := a.status(ctx, b)
	if err != nil {
		return drivers.Capabilities{}, classify(ctx, op, err)
	}
	replicated := st.ReplicationStatus != "" && st.ReplicationStatus != ferry.ReplicationDisabled && st.ReplicationStatus != ferry.ReplicationNotCapable
	canCluster := !b.clustered() || b.site.ver.need(mvRepl, "") == nil
	return drivers.Capabilities{
		Replication: replicated && canCluster,
		Freeze:      canCluster,
		// Groups fail over together (3.38) and drills copy a group
		// snapshot into a new group (3.14). Fence stays false: freezing
		// cinder-volume stops management calls, not writes.
		ConsistencyGroup: b.site.ver.need(mvGroupRepl, "") == nil,
		TestFailover:     b.site.ver.need(mvGroups, "") == nil,
	}, nil
}

// cinderBackendStatus reads the backend's replication_status, active_backend_id
// and frozen, with its members (a cluster's services, or the one service).
func (a *Adapter) cinderBackendStatus(ctx context.Context, backend string) (drivers.BackendStatus, error) {
	const op = "storage.backend_status"
	b, err := a.backend(ctx, op, backend)
	if err != nil {
		return drivers.BackendStatus{Backend: backend}, err
	}
	st, err := a.status(ctx, b)
	if err != nil {
		return st, classifyOp(ctx, op, err)
	}
	return st, nil
}

// classifyOp is classify that also names the op in errors the adapter
// typed before it knew the op.
func classifyOp(ctx context.Context, op string, err error) error {
	if de, ok := err.(*drivers.Error); ok && de.Op == "" {
		return &drivers.Error{Kind: de.Kind, Op: op, Err: de.Err}
	}
	return classify(ctx, op, err)
}

// settled is the state Cinder reaches when a failover to target succeeded.
func settled(target string) (status, active string) {
	if target == failback {
		return ferry.ReplicationEnabled, ""
	}
	return ferry.ReplicationFailedOver, target
}

func matches(st drivers.BackendStatus, target string) bool {
	status, active := settled(target)
	return st.ReplicationStatus == status && (target == "" || st.ActiveBackendID == active)
}

// FailoverHost fails the backend over to targetID (a replication_device
// backend_id; "default" fails back): failover_host for a single service,
// the cluster failover action (3.26+) for a cluster. Cinder answers 202 and
// does the work in cinder-volume, so the adapter waits until the
// backend's replication_status leaves failing-over and checks the outcome:
// Cinder accepts an unknown backend_id with 202, only logs the driver's
// refusal and leaves the backend as it was, which is an error here.
func (a *Adapter) FailoverHost(ctx context.Context, key, backend, targetID string) (drivers.HostFailoverResult, error) {
	const op = "storage.failover_host"
	return mutate(ctx, a, op, key, func() (drivers.HostFailoverResult, error) {
		var res drivers.HostFailoverResult
		b, err := a.backend(ctx, op, backend)
		if err != nil {
			return res, err
		}
		action, body, v := "failover_host", map[string]any{"host": b.cfg.Host}, mvBase
		if b.clustered() {
			if err := b.site.ver.need(mvRepl, "failing over cluster "+b.cfg.Cluster+" (PUT /os-services/failover)"); err != nil {
				return res, drivers.Errorf(drivers.Permanent, op, "site %s: %v", b.cfg.Site, err)
			}
			action, body, v = "failover", map[string]any{"cluster": b.cfg.Cluster}, mvRepl
		}
		if targetID != "" {
			body["backend_id"] = targetID
		}
		st, err := a.status(ctx, b)
		if err != nil {
			return res, err
		}
		if targetID == "" || !matches(st, targetID) {
			if st.ReplicationStatus != ferry.ReplicationEnabled && st.ReplicationStatus != ferry.ReplicationFailedOver {
				return res, drivers.Errorf(drivers.Permanent, op, "Cinder fails a backend over only from replication_status enabled or failed-over; %s is %s", b.cinderName(), st.ReplicationStatus)
			}
			actx, cancel := a.withTimeout(ctx)
			err := serviceAction(actx, b.site.sc, v, action, body)
			cancel()
			if err != nil {
				return res, fmt.Errorf("PUT /os-services/%s %s: %w", action, b.cinderName(), err)
			}
			if st, err = a.settle(ctx, op, b); err != nil {
				return res, err
			}
			if st.ReplicationStatus == ferry.ReplicationFailoverErr {
				return res, drivers.Errorf(drivers.Permanent, op, "cinder-volume reported failover-error for %s failing over to %q: its driver failed (see cinder-volume's log); Cinder disabled the service", b.cinderName(), targetID)
			}
			if !matches(st, targetID) {
				want, wantID := settled(targetID)
				return res, drivers.Errorf(drivers.Permanent, op, "Cinder accepted failing %s over to %q (202) but left it replication_status=%s active_backend_id=%q, not %s/%q: cinder-volume refused the target (Cinder only logs an unknown backend_id)", b.cinderName(), targetID, st.ReplicationStatus, st.ActiveBackendID, want, wantID)
			}
		}
		return a.volumeOutcome(ctx, b, targetID)
	})
}

// settle waits until the backend's replication_status is no longer
// failing-over.
func (a *Adapter) settle(ctx context.Context, op string, b backendRef) (drivers.BackendStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	for {
		st, err := a.status(ctx, b)
		if err == nil && st.ReplicationStatus != ferry.ReplicationFailingOver {
			return st, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("replication_status of %s still %s after %s", b.cinderName(), st.ReplicationStatus, a.cfg.SettleTimeout)
			}
			return st, drivers.Errorf(drivers.Retryable, op, "%v", err)
		case <-time.After(pollEvery):
		}
	}
}

// volumeOutcome lists the backend's volumes after a failover: the
// replicated ones now served from the target, and those Cinder put in
// error because they are not replicated.
func (a *Adapter) volumeOutcome(ctx context.Context, b backendRef, targetID string) (drivers.HostFailoverResult, error) {
	res := drivers.HostFailoverResult{Promoted: []drivers.PromotedPoint{}}
	vols, err := a.siteVolumes(ctx, b.site)
	if err != nil {
		return res, err
	}
	st, err := a.status(ctx, b)
	if err != nil {
		return res, err
	}
	hosts := map[string]bool{b.cinderName(): true}
	for _, m := range st.Members {
		hosts[m.Name] = true
	}
	now := time.Now().UTC()
	want, _ := settled(targetID)
	for _, v := range vols {
		host, _, _ := strings.Cut(v.Host, "#")
		if !hosts[host] {
			continue
		}
		switch {
		case v.Status == "error" && (v.ReplicationStatus == ferry.ReplicationNotCapable || v.ReplicationStatus == ferry.ReplicationFailoverErr):
			res.Errored = append(res.Errored, volumeName(v))
		case v.ReplicationStatus == want:
			res.Promoted = append(res.Promoted, drivers.PromotedPoint{Resource: volumeName(v), At: now, LostWrites: -1})
		}
	}
	sort.Slice(res.Promoted, func(i, j int) bool { return res.Promoted[i].Resource < res.Promoted[j].Resource })
	sort.Strings(res.Errored)
	return res, nil
}

func volumeName(v volumes.Volume) string {
	if v.Name != "" {
		return v.Name
	}
	return v.ID
}

// cinderFreeze freezes the backend's management plane (PUT /os-services/freeze;
// a cluster needs 3.26+). A backend already frozen is left as it is.
func (a *Adapter) cinderFreeze(ctx context.Context, key, backend string) error {
	return a.freezeThaw(ctx, "storage.freeze", key, backend, true)
}

// cinderThaw lifts a freeze (PUT /os-services/thaw).
func (a *Adapter) cinderThaw(ctx context.Context, key, backend string) error {
	return a.freezeThaw(ctx, "storage.thaw", key, backend, false)
}

func (a *Adapter) freezeThaw(ctx context.Context, op, key, backend string, freeze bool) error {
	action := map[bool]string{true: "freeze", false: "thaw"}[freeze]
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		b, err := a.backend(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		body, v := map[string]any{"host": b.cfg.Host}, mvBase
		if b.clustered() {
			if err := b.site.ver.need(mvRepl, action+" of cluster "+b.cfg.Cluster); err != nil {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "site %s: %v", b.cfg.Site, err)
			}
			body, v = map[string]any{"cluster": b.cfg.Cluster}, mvRepl
		}
		st, err := a.status(ctx, b)
		if err != nil {
			return struct{}{}, err
		}
		if st.Frozen == freeze {
			return struct{}{}, nil
		}
		actx, cancel := a.withTimeout(ctx)
		err = serviceAction(actx, b.site.sc, v, action, body)
		cancel()
		if err != nil {
			return struct{}{}, fmt.Errorf("PUT /os-services/%s %s: %w", action, b.cinderName(), err)
		}
		if st, err = a.status(ctx, b); err != nil {
			return struct{}{}, err
		}
		if st.Frozen != freeze {
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "Cinder answered %s of %s but shows frozen=%v", action, b.cinderName(), st.Frozen)
		}
		return struct{}{}, nil
	})
	return err
}

// cinderFailoverCompleted checks that one member of the backend serves
// activeBackendID. In a cluster Cinder itself sends failover_completed to
// every member once the volumes moved; the adapter cannot send it, so it
// records what the API shows: it waits a little for the member to apply
// it, then says which id the member still reports.
func (a *Adapter) cinderFailoverCompleted(ctx context.Context, key, backend, member, activeBackendID string) error {
	const op = "storage.failover_completed"
	want := activeBackendID
	if want == failback {
		want = ""
	}
	// A group failover (failover_replication) to this backend as a
	// replication target moves no service: Cinder keeps the groups' state in
	// its database, which every member reads, and sends no
	// failover_completed. What is left to check is that the member is
	// there and up.
	cfg := a.cfg.Backends[backend]
	groupFailover := cfg.TargetOf != "" && activeBackendID == cfg.BackendID
	if groupFailover && cfg.Host == "" && cfg.Cluster == "" {
		return nil // a target with no service of its own has no members
	}
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		b, err := a.backend(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		if groupFailover {
			st, err := a.status(ctx, b)
			if err != nil {
				return struct{}{}, err
			}
			for _, m := range st.Members {
				if isMember(m.Name, member) {
					if !m.Up {
						return struct{}{}, drivers.Errorf(drivers.Retryable, op, "member %s of %s is down: it cannot serve the failed-over groups", member, b.cinderName())
					}
					return struct{}{}, nil
				}
			}
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "%s is not a member of %s (members: %v)", member, b.cinderName(), memberNames(st))
		}
		wctx, cancel := context.WithTimeout(ctx, min(a.cfg.SettleTimeout, 30*time.Second))
		defer cancel()
		for {
			st, err := a.status(wctx, b)
			if err == nil {
				found := false
				for _, m := range st.Members {
					if !isMember(m.Name, member) {
						continue
					}
					found = true
					if m.ActiveBackendID == want {
						return struct{}{}, nil
					}
					err = drivers.Errorf(drivers.Retryable, op, "member %s of %s reports active_backend_id %q, want %q: it has not applied the failover_completed Cinder sends it", member, b.cinderName(), m.ActiveBackendID, want)
				}
				if !found {
					return struct{}{}, drivers.Errorf(drivers.Permanent, op, "%s is not a member of %s (members: %v)", member, b.cinderName(), memberNames(st))
				}
			}
			select {
			case <-wctx.Done():
				if ctx.Err() != nil {
					return struct{}{}, ctx.Err()
				}
				return struct{}{}, err
			case <-time.After(pollEvery):
			}
		}
	})
	return err
}

// isMember says whether a cinder-volume service host ("host@backend") is
// the member an inventory names, by its full host or its host alone.
func isMember(service, member string) bool {
	return service == member || strings.HasPrefix(service, member+"@")
}

func memberNames(st drivers.BackendStatus) []string {
	out := make([]string, len(st.Members))
	for i, m := range st.Members {
		out[i] = m.Name
	}
	return out
}

// cinderSetReplicationStatus cannot write Cinder's bookkeeping: cinder-volume
// keeps replication_status and active_backend_id itself and the API has no
// call that sets them. The adapter accepts failing-over (Cinder sets it
// itself when a failover is requested) and checks any other status against
// what Cinder shows: a mismatch is a Permanent error, never a silent
// success.
func (a *Adapter) cinderSetReplicationStatus(ctx context.Context, key, backend, status, activeBackendID string) error {
	const op = "storage.set_replication_status"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		if status == ferry.ReplicationFailingOver {
			return struct{}{}, nil
		}
		b, err := a.backend(ctx, op, backend)
		if err != nil {
			return struct{}{}, err
		}
		st, err := a.status(ctx, b)
		if err != nil {
			return struct{}{}, err
		}
		want := activeBackendID
		if want == failback {
			want = ""
		}
		if st.ReplicationStatus == status && st.ActiveBackendID == want {
			return struct{}{}, nil
		}
		return struct{}{}, drivers.Errorf(drivers.Permanent, op, "Cinder keeps replication_status itself (its API cannot write it): %s shows %s/%q, not %s/%q", b.cinderName(), st.ReplicationStatus, st.ActiveBackendID, status, want)
	})
	return err
}

// Volume is a Cinder volume as the adapter reads it.
type Volume struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Site              string `json:"site"`
	Host              string `json:"host"`    // host@backend#pool
	Backend           string `json:"backend"` // the Ferry backend, if configured
	Status            string `json:"status"`
	ReplicationStatus string `json:"replication_status"`
}

// Volumes finds volumes by name or id at every site and reports them as
// Cinder does, in the order asked. Two volumes of one name (Cinder allows
// it) are both reported.
func (a *Adapter) Volumes(ctx context.Context, names []string) ([]Volume, error) {
	const op = "storage.volumes"
	want, order := map[string]bool{}, map[string]int{}
	for i, n := range names {
		want[n] = true
		order[n] = i
	}
	sites := a.volumeSites()
	var out []Volume
	found := map[string]bool{}
	for _, name := range sites {
		s, err := a.site(ctx, op, name)
		if err != nil {
			return nil, err
		}
		vols, err := a.siteVolumes(ctx, s)
		if err != nil {
			return nil, classify(ctx, op, err)
		}
		clusterOf := map[string]string{}
		if !s.ver.usable().less(mvCluster) {
			rctx, cancel := a.withTimeout(ctx)
			svcs, err := volumeServices(rctx, s.sc, s.ver.usable())
			cancel()
			if err != nil {
				return nil, classify(ctx, op, err)
			}
			for _, sv := range svcs {
				clusterOf[sv.Host] = str(sv.Cluster)
			}
		}
		for _, v := range vols {
			key := v.Name
			if !want[key] {
				key = v.ID
			}
			if !want[key] {
				continue
			}
			found[key] = true
			out = append(out, Volume{ID: v.ID, Name: v.Name, Site: name, Host: v.Host, Backend: a.backendOf(name, v.Host, clusterOf), Status: v.Status, ReplicationStatus: v.ReplicationStatus})
		}
	}
	out = a.oncePerVolume(out)
	for _, n := range names {
		if !found[n] {
			return out, drivers.Errorf(drivers.Permanent, op, "no volume %q at any site", n)
		}
	}
	pos := func(v Volume) int {
		if i, ok := order[v.Name]; ok {
			return i
		}
		return order[v.ID]
	}
	sort.SliceStable(out, func(i, j int) bool { return pos(out[i]) < pos(out[j]) })
	return out, nil
}

// oncePerVolume keeps one report of each volume id. One Cinder may serve
// several sites (a control plane stretched over them, or two regions of a
// cloud whose endpoints share a database): every site's endpoint then lists
// the same volume, and the report that counts is the one from the site
// whose configured backend holds it.
func (a *Adapter) oncePerVolume(vols []Volume) []Volume {
	configured := func(v Volume) bool {
		b, ok := a.cfg.Backends[v.Backend]
		return ok && b.Site == v.Site
	}
	best := map[string]int{}
	for i, v := range vols {
		j, seen := best[v.ID]
		if !seen || (!configured(vols[j]) && configured(v)) {
			best[v.ID] = i
		}
	}
	out := vols[:0:0]
	for i, v := range vols {
		if best[v.ID] == i {
			out = append(out, v)
		}
	}
	return out
}

// volumeSites are the sites whose Cinder holds Ferry's volumes: those with
// a configured cinder-volume service (a replication target's site reaches
// its volumes through its primary's service), or every site when no
// backend is configured. A DR site's cloud being down must not stop the
// adapter from reading the primary's volumes.
func (a *Adapter) volumeSites() []string {
	seen := map[string]bool{}
	for _, b := range a.cfg.Backends {
		if !b.share() && (b.Host != "" || b.Cluster != "") {
			seen[b.Site] = true
		}
	}
	if len(seen) == 0 {
		for s := range a.cfg.Sites {
			seen[s] = true
		}
	}
	sites := make([]string, 0, len(seen))
	for s := range seen {
		sites = append(sites, s)
	}
	sort.Strings(sites)
	return sites
}

// backendOf maps a volume's host (host@backend#pool) back to the
// configured Ferry backend: its service's host, or its service's cluster.
func (a *Adapter) backendOf(site, host string, clusterOf map[string]string) string {
	h, _, _ := strings.Cut(host, "#")
	for name, b := range a.cfg.Backends {
		if b.Site == site && ((b.Host != "" && b.Host == h) || (b.Cluster != "" && clusterOf[h] == b.Cluster)) {
			return name
		}
	}
	return h
}

// cinderReplicationStatus reports each volume's replicas as Cinder shows
// them. Cinder shows only the active side of a replicated volume (the
// secondary lives in the storage behind replication_device), with its
// replication_status: enabled is active at its service, failed-over active
// at the replication target. The other side is inferred from the
// configured targets (Backend.TargetOf): in_sync behind an enabled volume,
// out_of_sync at the service a volume failed over from (it receives
// nothing until failback). With several targets configured Cinder does not
// say which one a volume failed over to, so none is reported. Lag and the
// last consistent point are not in Cinder's API.
func (a *Adapter) cinderReplicationStatus(ctx context.Context, resources []string) ([]drivers.ReplicaStatus, error) {
	vols, err := a.Volumes(ctx, resources)
	if err != nil {
		if de, ok := err.(*drivers.Error); ok {
			return nil, &drivers.Error{Kind: de.Kind, Op: "storage.replication_status", Err: de.Err}
		}
		return nil, err
	}
	out := make([]drivers.ReplicaStatus, 0, len(vols))
	for _, v := range vols {
		name := volumeName(volumes.Volume{ID: v.ID, Name: v.Name})
		usable := v.Status == "available" || v.Status == "in-use"
		state := ferry.ReplicaError
		targets := a.targetsOfBackend(v.Backend)
		switch {
		case usable && v.ReplicationStatus == ferry.ReplicationEnabled:
			state = ferry.ReplicaActive
			for _, t := range targets {
				out = append(out, drivers.ReplicaStatus{Resource: name, Site: a.cfg.Backends[t].Site, Backend: t, State: ferry.ReplicaInSync})
			}
		case usable && v.ReplicationStatus == ferry.ReplicationFailedOver:
			state = ferry.ReplicaOutOfSync
			if len(targets) == 1 {
				out = append(out, drivers.ReplicaStatus{Resource: name, Site: a.cfg.Backends[targets[0]].Site, Backend: targets[0], State: ferry.ReplicaActive})
			} else {
				// Which target holds it is unknown: say active where Cinder
				// shows it, as before targets were configured.
				state = ferry.ReplicaActive
			}
		}
		out = append(out, drivers.ReplicaStatus{Resource: name, Site: v.Site, Backend: v.Backend, State: state})
	}
	return out, nil
}

// targetsOfBackend lists the configured replication targets of a Cinder
// service backend, sorted.
func (a *Adapter) targetsOfBackend(backend string) []string {
	var out []string
	for name, b := range a.cfg.Backends {
		if b.TargetOf == backend && name != backend {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// siteVolumes lists every volume at a site (all projects: Ferry acts as the
// cloud's admin).
func (a *Adapter) siteVolumes(ctx context.Context, s *siteClient) ([]volumes.Volume, error) {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	pages, err := volumes.List(s.sc, volumes.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return volumes.ExtractVolumes(pages)
}
