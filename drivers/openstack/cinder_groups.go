package openstack

// Cinder's generic volume groups behind Ferry's storage and replication
// ports: group replication ("Tiramisu", API 3.38+), group snapshots and
// groups made from them (3.14+).
//
// In Cinder's replication model the secondary array is not a Cinder
// backend of its own: it is a replication_device of the primary's
// cinder-volume service, which addresses both arrays. A Ferry backend with
// target_of is such a device (its backend_id); every group call goes to
// the Cinder of the service backend, whatever site the target is at. A
// Ferry volume is a Cinder volume (by name, or id) on that service, and
// Cinder moves volumes only as whole groups: a call that would move,
// suspend or reprotect a group refuses, naming them, when the group holds
// volumes the call does not name.
//
// Where the ports ask for something Cinder has no call for, the adapter
// says so (Permanent, with the reason), or, where Cinder's own model
// already does it, checks Cinder's state and does nothing more:
//
//   - Promote to a target is failover_replication with its backend_id;
//     Promote on the service is failover_replication "default" (fail back).
//     Cinder does not say which writes a failover lost: LostWrites is -1.
//     force changes nothing: Cinder's failover is the same call either way.
//   - Demote is a checked no-op: Cinder has no demote; failover_replication
//     of an enabled group is its orderly switch, done by Promote.
//   - Sync reports what Cinder shows: Cinder replicates continuously and
//     has no "sync now", no lag and no sequence numbers.
//   - Fence is refused: Cinder cannot stop servers writing to a volume.
//   - Resync of a failed-over group is refused: Cinder has no reprotect.
//   - Suspend and Resume are disable_replication and enable_replication
//     (what drivers implement them as: PowerMax suspends and resumes SRDF).
//   - SnapshotGroup is a group snapshot; TestFailoverStart clones one into
//     a new group (create-from-src).

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// groupSide is the backend a group call names: a cinder-volume service
// backend, or one of its replication targets.
type groupSide struct {
	name     string     // the Ferry backend the call names
	svc      backendRef // the service backend whose Cinder holds the groups
	targetID string     // the replication_device backend_id; "" when name is the service
}

func (s groupSide) isTarget() bool { return s.targetID != "" }

// ver is the microversion the adapter sends to the service's Cinder.
func (s groupSide) ver() mv { return s.svc.site.ver.usable() }

// groupSide resolves backend and checks that its Cinder can do what
// needs microversion need.
func (a *Adapter) groupSide(ctx context.Context, op, backend string, need mv, what string) (groupSide, error) {
	cfg, ok := a.cfg.Backends[backend]
	if !ok {
		return groupSide{}, drivers.Errorf(drivers.Permanent, op, "unknown backend %q", backend)
	}
	svcName, targetID := backend, ""
	if cfg.TargetOf != "" {
		svcName, targetID = cfg.TargetOf, cfg.BackendID
	}
	b, err := a.backend(ctx, op, svcName)
	if err != nil {
		return groupSide{}, err
	}
	if err := b.site.ver.need(need, what); err != nil {
		return groupSide{}, drivers.Errorf(drivers.Permanent, op, "site %s: %v", b.cfg.Site, err)
	}
	return groupSide{name: backend, svc: b, targetID: targetID}, nil
}

// rgroup is one Cinder group a call acts on: the volumes of it the call
// names (in the call's order) and the group's other volumes.
type rgroup struct {
	cgroup
	replicated bool
	named      []gvolume
	others     []gvolume
}

func (g rgroup) label() string {
	if g.Name != "" {
		return fmt.Sprintf("%s (%s)", g.ID, g.Name)
	}
	return g.ID
}

// resolveGroups finds the groups that hold resources on the side's
// service. whole refuses groups that hold volumes resources do not name;
// replicated refuses groups not of a replication group type.
func (a *Adapter) resolveGroups(ctx context.Context, op string, s groupSide, resources []string, whole, replicated bool) ([]rgroup, error) {
	if len(resources) == 0 {
		return nil, drivers.Errorf(drivers.Permanent, op, "no volumes named")
	}
	sc, v := s.svc.site.sc, s.ver()
	var vols []gvolume
	var mine func(string) bool
	err := a.call(ctx, func(ctx context.Context) (err error) {
		if vols, err = groupVolumes(ctx, sc, v, ""); err != nil {
			return fmt.Errorf("list the volumes at site %s: %w", s.svc.cfg.Site, err)
		}
		mine, err = a.onService(ctx, s.svc)
		return err
	})
	if err != nil {
		return nil, err
	}
	var groups []rgroup
	index := map[string]int{}
	named := map[string]bool{}
	var loners []string
	for _, r := range resources {
		var hits []gvolume
		for _, vol := range vols {
			if (vol.Name == r || vol.ID == r) && mine(vol.Host) {
				hits = append(hits, vol)
			}
		}
		switch {
		case len(hits) == 0:
			return nil, drivers.Errorf(drivers.Permanent, op, "no volume %q on backend %s (cinder-volume %s at site %s)", r, s.svc.name, s.svc.cinderName(), s.svc.cfg.Site)
		case len(hits) > 1:
			return nil, drivers.Errorf(drivers.Permanent, op, "%d volumes are named %q on backend %s: name it by id", len(hits), r, s.svc.name)
		}
		vol := hits[0]
		named[vol.ID] = true
		if str(vol.GroupID) == "" {
			loners = append(loners, r)
			continue
		}
		i, ok := index[*vol.GroupID]
		if !ok {
			i = len(groups)
			index[*vol.GroupID] = i
			groups = append(groups, rgroup{cgroup: cgroup{ID: *vol.GroupID}})
		}
		groups[i].named = append(groups[i].named, vol)
	}
	if len(loners) > 0 {
		return nil, drivers.Errorf(drivers.Permanent, op, "%s in no volume group: Cinder replicates, fails over and snapshots volumes together only as a generic volume group (of a replication group type for replication); put them in one", strings.Join(loners, ", "))
	}
	specs := map[string]map[string]string{}
	var partial []string
	for i := range groups {
		g := &groups[i]
		var cg *cgroup
		err := a.call(ctx, func(ctx context.Context) (err error) {
			cg, err = getGroup(ctx, sc, v, g.ID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read group %s: %w", g.ID, err)
		}
		if cg == nil {
			return nil, drivers.Errorf(drivers.Retryable, op, "group %s of volume %s is gone", g.ID, g.named[0].label())
		}
		g.cgroup = *cg
		sp, ok := specs[g.GroupType]
		if !ok {
			err := a.call(ctx, func(ctx context.Context) (err error) {
				sp, err = groupSpecs(ctx, sc, v, g.GroupType)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("read group type %s: %w", g.GroupType, err)
			}
			specs[g.GroupType] = sp
		}
		g.replicated = isReplicatedType(sp)
		if replicated && !g.replicated {
			return nil, drivers.Errorf(drivers.Permanent, op, "%s in group %s, whose group type %s is not a replication group type (group spec consistent_group_replication_enabled or group_replication_enabled \"<is> True\"): Cinder does not replicate it", labels(g.named), g.label(), g.GroupType)
		}
		for _, vol := range vols {
			if str(vol.GroupID) == g.ID && !named[vol.ID] {
				g.others = append(g.others, vol)
			}
		}
		if whole && len(g.others) > 0 {
			partial = append(partial, fmt.Sprintf("group %s also holds %s", g.label(), labels(g.others)))
		}
	}
	if len(partial) > 0 {
		return nil, drivers.Errorf(drivers.Permanent, op, "Cinder moves a volume group as a whole, and %s, which the call does not name: name every volume of the group, or take those out of it", strings.Join(partial, "; "))
	}
	return groups, nil
}

// call runs one request (or a few that belong together) under the
// adapter's request timeout.
func (a *Adapter) call(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	return fn(ctx)
}

// onService returns whether a volume's host (host@backend#pool) is the
// service backend's: its host, or a member of its cluster.
func (a *Adapter) onService(ctx context.Context, b backendRef) (func(host string) bool, error) {
	hosts := map[string]bool{}
	if b.clustered() {
		svcs, err := volumeServices(ctx, b.site.sc, b.site.ver.usable())
		if err != nil {
			return nil, fmt.Errorf("list the cinder-volume services at site %s: %w", b.cfg.Site, err)
		}
		for _, sv := range svcs {
			if str(sv.Cluster) == b.cfg.Cluster {
				hosts[sv.Host] = true
			}
		}
	} else {
		hosts[b.cfg.Host] = true
	}
	return func(host string) bool {
		h, _, _ := strings.Cut(host, "#")
		return hosts[h]
	}, nil
}

func labels(vols []gvolume) string {
	out := make([]string, len(vols))
	for i, v := range vols {
		out[i] = v.label()
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// transitional replication states: cinder-volume is still working on an
// action the API accepted.
func transitional(status string) bool {
	return status == "enabling" || status == "disabling" || status == ferry.ReplicationFailingOver
}

// settleGroup waits until cinder-volume has finished the group's pending
// replication action, and returns the group as it is then.
func (a *Adapter) settleGroup(ctx context.Context, op string, s groupSide, id string) (*cgroup, error) {
	return a.waitGroup(ctx, op, s, id, "replication_status", func(g *cgroup) bool {
		return g != nil && !transitional(g.ReplicationStatus)
	})
}

// waitGroup polls a group until done says so, within the settle timeout.
func (a *Adapter) waitGroup(ctx context.Context, op string, s groupSide, id, what string, done func(*cgroup) bool) (*cgroup, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	for {
		rctx, rcancel := a.withTimeout(ctx)
		g, err := getGroup(rctx, s.svc.site.sc, s.ver(), id)
		rcancel()
		if err == nil && done(g) {
			return g, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				state := "gone"
				if g != nil {
					state = fmt.Sprintf("status %s, replication_status %s", g.Status, g.ReplicationStatus)
				}
				err = fmt.Errorf("group %s still %s after %s, waiting for its %s", id, state, a.cfg.SettleTimeout, what)
			}
			return g, drivers.Errorf(drivers.Retryable, op, "%v", err)
		case <-time.After(pollEvery):
		}
	}
}

// targetsOf lists a group's replication targets (backend_ids only).
func (a *Adapter) targetsOf(ctx context.Context, s groupSide, id string) ([]string, error) {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	t, err := replicationTargets(rctx, s.svc.site.sc, s.ver(), id)
	if err != nil {
		return nil, fmt.Errorf("list_replication_targets of group %s: %w", id, err)
	}
	return t, nil
}

// failedOverTo says which target a failed-over group is served from.
// Cinder does not show it: it is knowable only when the group has one
// target.
func (a *Adapter) failedOverTo(ctx context.Context, op string, s groupSide, g rgroup) (string, error) {
	targets, err := a.targetsOf(ctx, s, g.ID)
	if err != nil {
		return "", err
	}
	if len(targets) == 1 {
		return targets[0], nil
	}
	return "", drivers.Errorf(drivers.Permanent, op, "group %s is failed over, and Cinder does not show to which of its replication targets (%s): fail it back first (Promote on %s)", g.label(), strings.Join(targets, ", "), s.svc.name)
}

// notReplicating is the refusal for a group whose replication_status
// allows no failover.
func notReplicating(op string, g rgroup) error {
	if g.ReplicationStatus == ferry.ReplicationDisabled {
		return drivers.Errorf(drivers.Permanent, op, "replication of group %s is disabled: no replica takes over (enable it first: EnableReplication or ResumeReplication)", g.label())
	}
	return drivers.Errorf(drivers.Permanent, op, "group %s is status %s, replication_status %s: a replication action failed in cinder-volume (see its log); Cinder acts on a group only once an admin has reset it", g.label(), g.Status, g.ReplicationStatus)
}

// settleAll waits for every group's pending replication action and
// refreshes what the call knows of it.
func (a *Adapter) settleAll(ctx context.Context, op string, s groupSide, groups []rgroup) error {
	for i := range groups {
		g, err := a.settleGroup(ctx, op, s, groups[i].ID)
		if err != nil {
			return err
		}
		groups[i].cgroup = *g
	}
	return nil
}

// groupPromote fails the groups holding resources over to the target
// backend names (failover_replication with its backend_id), or back to
// the service when backend is the service itself ("default"). Every group
// is checked before any is moved; a group already where it should be is
// left as it is. Cinder answers 202 and leaves the work, and a driver's
// refusal, to cinder-volume: the adapter waits for the outcome and reads
// it back. Attached volumes move too (allow_attached_volume): a failover
// stops, or has lost, the servers first, and Cinder still counts their
// volumes attached.
func (a *Adapter) groupPromote(ctx context.Context, key, backend string, resources []string, force bool) (drivers.PromoteResult, error) {
	const op = "storage.promote"
	return mutate(ctx, a, op, key, func() (drivers.PromoteResult, error) {
		var res drivers.PromoteResult
		s, err := a.groupSide(ctx, op, backend, mvGroupRepl, "failing a volume group over (failover_replication)")
		if err != nil {
			return res, err
		}
		groups, err := a.resolveGroups(ctx, op, s, resources, true, true)
		if err != nil {
			return res, err
		}
		if err := a.settleAll(ctx, op, s, groups); err != nil {
			return res, err
		}
		want, wantStatus := failback, ferry.ReplicationEnabled
		if s.isTarget() {
			want, wantStatus = s.targetID, ferry.ReplicationFailedOver
		}
		var todo []rgroup
		for _, g := range groups {
			switch g.Status {
			case "available":
			case "error":
				return res, notReplicating(op, g)
			default:
				return res, drivers.Errorf(drivers.Permanent, op, "group %s is %s: Cinder fails over only an available group", g.label(), g.Status)
			}
			move, err := a.promoteNeeded(ctx, op, s, g)
			if err != nil {
				return res, err
			}
			if move {
				todo = append(todo, g)
			}
		}
		for _, g := range todo {
			actx, cancel := a.withTimeout(ctx)
			err := groupAction(actx, s.svc.site.sc, s.ver(), g.ID, "failover_replication", map[string]any{"allow_attached_volume": true, "secondary_backend_id": want})
			cancel()
			if err != nil {
				return res, fmt.Errorf("failover_replication of group %s to %q: %w", g.label(), want, err)
			}
		}
		for _, g := range todo {
			got, err := a.settleGroup(ctx, op, s, g.ID)
			if err != nil {
				return res, err
			}
			if err := readBack(op, "failing group "+g.label()+" over to "+fmt.Sprintf("%q", want), got, wantStatus); err != nil {
				return res, err
			}
		}
		now := time.Now().UTC()
		for _, g := range groups {
			for _, v := range g.named {
				res.Points = append(res.Points, drivers.PromotedPoint{Resource: v.label(), At: now, LostWrites: -1})
			}
		}
		return res, nil
	})
}

// promoteNeeded says whether the group must be failed over for the side to
// serve it, and refuses what Cinder cannot do.
func (a *Adapter) promoteNeeded(ctx context.Context, op string, s groupSide, g rgroup) (bool, error) {
	switch g.ReplicationStatus {
	case ferry.ReplicationEnabled:
		if !s.isTarget() {
			return false, nil // the service's own array serves it already
		}
		targets, err := a.targetsOf(ctx, s, g.ID)
		if err != nil {
			return false, err
		}
		if !slices.Contains(targets, s.targetID) {
			// Checked before, not after: Cinder accepts any id with 202
			// and the driver's refusal puts the group and its volumes in
			// error, which only an admin's reset undoes.
			return false, drivers.Errorf(drivers.Permanent, op, "Cinder lists %s as the replication targets of group %s, not %q (backend %s): its cinder-volume has no such replication_device", listOrNone(targets), g.label(), s.targetID, s.name)
		}
		return true, nil
	case ferry.ReplicationFailedOver:
		if !s.isTarget() {
			return true, nil
		}
		to, err := a.failedOverTo(ctx, op, s, g)
		if err != nil {
			return false, err
		}
		if to != s.targetID {
			return false, drivers.Errorf(drivers.Permanent, op, "group %s is failed over to %q, not %q: fail it back first (Promote on %s)", g.label(), to, s.targetID, s.svc.name)
		}
		return false, nil
	case ferry.ReplicationDisabled:
		if !s.isTarget() {
			return false, nil // never failed over: served by the service
		}
	}
	return false, notReplicating(op, g)
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "no targets"
	}
	return strings.Join(ids, ", ")
}

// readBack checks what cinder-volume made of an action the API accepted.
func readBack(op, what string, g *cgroup, want string) error {
	if g.ReplicationStatus == want {
		return nil
	}
	if g.ReplicationStatus == ferry.ReplicationError || g.Status == "error" {
		return drivers.Errorf(drivers.Permanent, op, "Cinder accepted %s (202), but cinder-volume's driver failed: the group is now status %s, replication_status %s, and Cinder marks its volumes error too unless the driver said otherwise (see cinder-volume's log); an admin resets them before anything else is tried", what, g.Status, g.ReplicationStatus)
	}
	return drivers.Errorf(drivers.Permanent, op, "Cinder accepted %s (202) but left the group replication_status %s, not %s", what, g.ReplicationStatus, want)
}

// groupDemote is a checked no-op. Cinder has no demote: failover_replication
// of an enabled group is its orderly switch (the driver makes the
// secondary the primary), and Promote does it. What the adapter checks is
// that Promote will be able to: the groups exist whole, replicate, and are
// not busy or in error.
func (a *Adapter) groupDemote(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.demote"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		s, err := a.groupSide(ctx, op, backend, mvGroupRepl, "failing a volume group over (failover_replication)")
		if err != nil {
			return struct{}{}, err
		}
		groups, err := a.resolveGroups(ctx, op, s, resources, true, true)
		if err != nil {
			return struct{}{}, err
		}
		if err := a.settleAll(ctx, op, s, groups); err != nil {
			return struct{}{}, err
		}
		for _, g := range groups {
			if g.ReplicationStatus != ferry.ReplicationEnabled && g.ReplicationStatus != ferry.ReplicationFailedOver {
				return struct{}{}, notReplicating(op, g)
			}
		}
		return struct{}{}, nil
	})
	return err
}

// groupFence refuses: Cinder has nothing that stops servers writing to a
// volume. Freezing the cinder-volume service (which the fence step does
// before it fences) stops management operations only, and whether the old
// primary array takes writes after a group failover is up to its driver.
func (a *Adapter) groupFence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.fence"
	if _, ok := a.cfg.Backends[backend]; !ok {
		return drivers.Errorf(drivers.Permanent, op, "unknown backend %q", backend)
	}
	return drivers.Errorf(drivers.Permanent, op, "Cinder cannot fence %s: it has no call that stops servers writing to its volumes (freezing cinder-volume stops management operations only, and a group failover leaves the old primary array to its driver); fence the old primary outside Cinder (stop its servers, cut its storage network), then fail over with `ferry failover GROUP --unplanned --fenced-out-of-band HOW`", backend)
}

// groupUnfence has nothing to lift: Fence never fences a Cinder backend
// (it refuses), so no Cinder backend is ever fenced by Ferry.
func (a *Adapter) groupUnfence(ctx context.Context, key, backend string, epoch int64) error {
	const op = "storage.unfence"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		if _, ok := a.cfg.Backends[backend]; !ok {
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "unknown backend %q", backend)
		}
		return struct{}{}, nil
	})
	return err
}

// groupSync reports the groups' replicas as Cinder shows them. Cinder
// replicates continuously and has no "sync now": what it knows is the
// group's and the volumes' replication_status. From the service of an
// enabled group, each volume is active there and, at each configured
// target Cinder lists for the group, in_sync as far as Cinder can tell
// (enabled; Cinder has no lag and no sequence numbers, so Seq and Lag are
// 0). From the target of a failed-over group, the volume is active there
// and out_of_sync at the service, which failing back
// (failover_replication "default") brings home.
func (a *Adapter) groupSync(ctx context.Context, key, backend string, resources []string) ([]drivers.ReplicaStatus, error) {
	const op = "storage.sync"
	return mutate(ctx, a, op, key, func() ([]drivers.ReplicaStatus, error) {
		s, err := a.groupSide(ctx, op, backend, mvGroupRepl, "reading a volume group's replication (replication_status of groups)")
		if err != nil {
			return nil, err
		}
		groups, err := a.resolveGroups(ctx, op, s, resources, false, true)
		if err != nil {
			return nil, err
		}
		if err := a.settleAll(ctx, op, s, groups); err != nil {
			return nil, err
		}
		out := []drivers.ReplicaStatus{}
		for _, g := range groups {
			targets, err := a.targetsOf(ctx, s, g.ID)
			if err != nil {
				return nil, err
			}
			switch {
			case !s.isTarget() && g.ReplicationStatus == ferry.ReplicationEnabled:
				for _, v := range g.named {
					out = append(out, a.replica(v, s.svc.name, ferry.ReplicaActive, ferry.ReplicationEnabled))
					for _, t := range a.targetBackends(s.svc.name, targets) {
						out = append(out, a.replica(v, t, ferry.ReplicaInSync, ferry.ReplicationEnabled))
					}
				}
			case s.isTarget() && g.ReplicationStatus == ferry.ReplicationFailedOver:
				to, err := a.failedOverTo(ctx, op, s, g)
				if err != nil {
					return nil, err
				}
				if to != s.targetID {
					return nil, drivers.Errorf(drivers.Permanent, op, "group %s is failed over to %q, not to %s (%q): Sync runs where the group is active", g.label(), to, s.name, s.targetID)
				}
				for _, v := range g.named {
					out = append(out, a.replica(v, s.name, ferry.ReplicaActive, ferry.ReplicationFailedOver))
					out = append(out, a.replica(v, s.svc.name, ferry.ReplicaOutOfSync, ferry.ReplicationFailedOver))
				}
			case g.ReplicationStatus == ferry.ReplicationEnabled || g.ReplicationStatus == ferry.ReplicationFailedOver:
				where := s.svc.name
				if g.ReplicationStatus == ferry.ReplicationFailedOver {
					where = "its replication target"
				}
				return nil, drivers.Errorf(drivers.Permanent, op, "group %s is %s, so it is active at %s, not at %s: Sync runs where the group is active", g.label(), g.ReplicationStatus, where, s.name)
			default:
				return nil, notReplicating(op, g)
			}
		}
		return out, nil
	})
}

// replica is one replica of a volume on a Ferry backend: state as given
// when the volume's own replication_status agrees with its group's, error
// when it does not or the volume is not usable.
func (a *Adapter) replica(v gvolume, backend, state, groupStatus string) drivers.ReplicaStatus {
	if v.ReplicationStatus != groupStatus || (v.Status != "available" && v.Status != "in-use") {
		state = ferry.ReplicaError
	}
	return drivers.ReplicaStatus{Resource: v.label(), Site: a.cfg.Backends[backend].Site, Backend: backend, State: state}
}

// targetBackends are the configured Ferry backends that are replication
// targets of service among the backend_ids Cinder lists, by name.
func (a *Adapter) targetBackends(service string, listed []string) []string {
	var out []string
	for name, b := range a.cfg.Backends {
		if b.TargetOf == service && slices.Contains(listed, b.BackendID) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// groupResync makes replicas on backend follow the actives where Cinder can:
// on a target of an enabled group they already do (nothing to do), and on a
// target of a group whose replication is disabled enable_replication
// starts it again (the driver overwrites what the target held). On the
// service of a failed-over group Cinder cannot: it has no reprotect, and
// it refuses disable_replication and enable_replication of a failed-over
// group; its way home is failing back (Promote on the service, which
// failover_replication "default" does with the secondary's data). Cinder
// does not say what a resync discarded: every count is -1.
func (a *Adapter) groupResync(ctx context.Context, key, backend string, resources []string) (drivers.ResyncResult, error) {
	const op = "storage.resync"
	return mutate(ctx, a, op, key, func() (drivers.ResyncResult, error) {
		res := drivers.ResyncResult{Discarded: map[string]int64{}}
		s, err := a.groupSide(ctx, op, backend, mvGroupRepl, "resyncing a volume group (enable_replication)")
		if err != nil {
			return res, err
		}
		groups, err := a.resolveGroups(ctx, op, s, resources, true, true)
		if err != nil {
			return res, err
		}
		if err := a.settleAll(ctx, op, s, groups); err != nil {
			return res, err
		}
		var enable []rgroup
		for _, g := range groups {
			switch {
			case s.isTarget() && g.ReplicationStatus == ferry.ReplicationEnabled:
				targets, err := a.targetsOf(ctx, s, g.ID)
				if err != nil {
					return res, err
				}
				if !slices.Contains(targets, s.targetID) {
					return res, drivers.Errorf(drivers.Permanent, op, "Cinder lists %s as the replication targets of group %s, not %q (backend %s)", listOrNone(targets), g.label(), s.targetID, s.name)
				}
			case s.isTarget() && g.ReplicationStatus == ferry.ReplicationDisabled:
				enable = append(enable, g)
			case s.isTarget() && g.ReplicationStatus == ferry.ReplicationFailedOver:
				return res, drivers.Errorf(drivers.Permanent, op, "group %s is failed over: its volumes are active at its replication target, not replicas to resync on %s", g.label(), s.name)
			case !s.isTarget() && g.ReplicationStatus == ferry.ReplicationFailedOver:
				// Cinder has no reprotect (it refuses disable_replication
				// and enable_replication of a failed-over group): the
				// driver owns the way back, and failing the group back
				// (Promote on this service: failover_replication
				// "default") brings the target's data home. So a failback's
				// resync has nothing to send; what it discards is the
				// driver's to know (-1).
			case !s.isTarget() && (g.ReplicationStatus == ferry.ReplicationEnabled || g.ReplicationStatus == ferry.ReplicationDisabled):
				return res, drivers.Errorf(drivers.Permanent, op, "group %s is served by %s (replication_status %s): its volumes there are the active ones, not replicas to resync", g.label(), s.name, g.ReplicationStatus)
			default:
				return res, notReplicating(op, g)
			}
		}
		if err := a.switchReplication(ctx, op, s, enable, true); err != nil {
			return res, err
		}
		for _, g := range groups {
			for _, v := range g.named {
				res.Discarded[v.label()] = -1
			}
		}
		return res, nil
	})
}

// switchReplication sends enable_replication (enable) or
// disable_replication to the groups, which the caller has checked, and
// reads the outcome back.
func (a *Adapter) switchReplication(ctx context.Context, op string, s groupSide, groups []rgroup, enable bool) error {
	action, want := "disable_replication", ferry.ReplicationDisabled
	if enable {
		action, want = "enable_replication", ferry.ReplicationEnabled
	}
	for _, g := range groups {
		actx, cancel := a.withTimeout(ctx)
		err := groupAction(actx, s.svc.site.sc, s.ver(), g.ID, action, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("%s of group %s: %w", action, g.label(), err)
		}
	}
	for _, g := range groups {
		got, err := a.settleGroup(ctx, op, s, g.ID)
		if err != nil {
			return err
		}
		if err := readBack(op, action+" of group "+g.label(), got, want); err != nil {
			return err
		}
	}
	return nil
}

// toggle enables or disables replication of the groups holding resources
// on the service s, leaving groups already so as they are. Cinder switches
// a group's replication toward all its targets at once; only (when set)
// is the one target the caller means, and the call refuses groups with
// others.
func (a *Adapter) toggle(ctx context.Context, op string, s groupSide, only string, resources []string, enable bool) error {
	groups, err := a.resolveGroups(ctx, op, s, resources, true, true)
	if err != nil {
		return err
	}
	if err := a.settleAll(ctx, op, s, groups); err != nil {
		return err
	}
	var todo []rgroup
	for _, g := range groups {
		if only != "" {
			targets, err := a.targetsOf(ctx, s, g.ID)
			if err != nil {
				return err
			}
			switch {
			case !slices.Contains(targets, only) && enable:
				return drivers.Errorf(drivers.Permanent, op, "Cinder lists %s as the replication targets of group %s, not %q: its cinder-volume (%s) has no replication_device with that backend_id", listOrNone(targets), g.label(), only, s.svc.cinderName())
			case !slices.Contains(targets, only):
				continue // nothing replicates there: nothing to remove
			case len(targets) > 1:
				return drivers.Errorf(drivers.Permanent, op, "Cinder switches a group's replication toward all its targets (%s) at once: Ferry does it for group %s only when %q is its one target", strings.Join(targets, ", "), g.label(), only)
			}
		}
		switch g.ReplicationStatus {
		case ferry.ReplicationEnabled:
			if !enable {
				todo = append(todo, g)
			}
		case ferry.ReplicationDisabled:
			if enable {
				todo = append(todo, g)
			}
		case ferry.ReplicationFailedOver:
			return drivers.Errorf(drivers.Permanent, op, "group %s is failed over, and Cinder enables or disables replication only of a group that is not (enabled, disabled, or error to disable): fail it back first (Promote on %s)", g.label(), s.svc.name)
		case ferry.ReplicationError:
			if !enable {
				todo = append(todo, g) // Cinder's way out of a failed action
				continue
			}
			return notReplicating(op, g)
		default:
			return notReplicating(op, g)
		}
	}
	return a.switchReplication(ctx, op, s, todo, enable)
}

// serviceSide resolves a backend that must be a cinder-volume service.
func (a *Adapter) serviceSide(ctx context.Context, op, backend, what string) (groupSide, error) {
	s, err := a.groupSide(ctx, op, backend, mvGroupRepl, what)
	if err != nil {
		return s, err
	}
	if s.isTarget() {
		return s, drivers.Errorf(drivers.Permanent, op, "%s is a replication target of %s: Cinder switches a group's replication at its cinder-volume service (%s), toward its targets, never from a target; after a failover the way back is failing back (Promote on %s)", backend, s.svc.name, s.svc.name, s.svc.name)
	}
	return s, nil
}

// groupEnableReplication enables replication of the groups holding
// resources on the service backend toward target (enable_replication).
// Cinder has no call that creates a replica: a group's volumes have their
// mirrors on the targets from their creation (the driver's), and
// enable_replication starts them. The target must be one Cinder lists for
// the group, and its only one.
func (a *Adapter) groupEnableReplication(ctx context.Context, key, backend, target string, resources []string) error {
	const op = "storage.enable_replication"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		s, err := a.serviceSide(ctx, op, backend, "enabling replication of a volume group (enable_replication)")
		if err != nil {
			return struct{}{}, err
		}
		t, ok := a.cfg.Backends[target]
		if !ok {
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "unknown target backend %q", target)
		}
		if t.TargetOf != backend {
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "%s is not a replication target of %s (its target_of is %q)", target, backend, t.TargetOf)
		}
		return struct{}{}, a.toggle(ctx, op, s, t.BackendID, resources, true)
	})
	return err
}

// groupDisableReplication disables replication of the groups holding
// resources toward the target backend (disable_replication). Cinder keeps
// the group and its volumes; whether the driver also drops the mirror is
// its own (PowerMax only suspends SRDF).
func (a *Adapter) groupDisableReplication(ctx context.Context, key, target string, resources []string) error {
	const op = "storage.disable_replication"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		s, err := a.groupSide(ctx, op, target, mvGroupRepl, "disabling replication of a volume group (disable_replication)")
		if err != nil {
			return struct{}{}, err
		}
		if !s.isTarget() {
			return struct{}{}, drivers.Errorf(drivers.Permanent, op, "%s is a cinder-volume service backend, which holds the active volumes: name the replication target to stop replicating to", target)
		}
		return struct{}{}, a.toggle(ctx, op, s, s.targetID, resources, false)
	})
	return err
}

// groupSuspendReplication stops replicating the groups holding resources
// (disable_replication, toward all their targets); Cinder shows such a
// group disabled, the same as one never enabled.
func (a *Adapter) groupSuspendReplication(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.suspend_replication"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		s, err := a.serviceSide(ctx, op, backend, "suspending replication of a volume group (disable_replication)")
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, a.toggle(ctx, op, s, "", resources, false)
	})
	return err
}

// groupResumeReplication starts replicating again (enable_replication).
func (a *Adapter) groupResumeReplication(ctx context.Context, key, backend string, resources []string) error {
	const op = "storage.resume_replication"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		s, err := a.serviceSide(ctx, op, backend, "resuming replication of a volume group (enable_replication)")
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, a.toggle(ctx, op, s, "", resources, true)
	})
	return err
}

// ListReplicationTargets returns the backend_ids Cinder lists as the
// replication targets of the group holding volume on backend (a service
// backend or one of its targets). Only the ids: Cinder shows an admin
// every key of a replication_device, which can hold an array's password.
func (a *Adapter) ListReplicationTargets(ctx context.Context, backend, volume string) ([]string, error) {
	const op = "storage.list_replication_targets"
	s, err := a.groupSide(ctx, op, backend, mvGroupRepl, "listing a volume group's replication targets (list_replication_targets)")
	if err != nil {
		return nil, err
	}
	groups, err := a.resolveGroups(ctx, op, s, []string{volume}, false, true)
	if err != nil {
		return nil, classify(ctx, op, err)
	}
	t, err := a.targetsOf(ctx, s, groups[0].ID)
	return t, classify(ctx, op, err)
}
