package openstack

// Group snapshots and drill copies of Cinder's generic volume groups
// (3.14+): SnapshotGroup, TestFailoverStart and TestFailoverStop.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// groupDrillPrefix names the groups and group snapshots TestFailoverStart
// makes; TestFailoverStop deletes no group without it.
// targetSite is the site of a service backend's configured replication
// targets ("" when they are at several sites or there is none).
func (a *Adapter) targetSite(service string) string {
	site := ""
	for _, t := range a.targetsOfBackend(service) {
		ts := a.cfg.Backends[t].Site
		if site != "" && ts != site {
			return ""
		}
		site = ts
	}
	return site
}

const groupDrillPrefix = "ferry-drill-"

// activeSideCheck refuses a snapshot taken from a side that does not serve
// the group (replication_status shows where it is served; Cinder's group
// snapshot is of the volumes there, whichever side is named).
func (a *Adapter) activeSideCheck(ctx context.Context, op string, s groupSide, g rgroup) error {
	switch {
	case g.ReplicationStatus == "": // below 3.38 Cinder does not show it
		return nil
	case transitional(g.ReplicationStatus):
		return drivers.Errorf(drivers.Retryable, op, "group %s is %s", g.label(), g.ReplicationStatus)
	case g.ReplicationStatus == ferry.ReplicationFailedOver && s.isTarget():
		to, err := a.failedOverTo(ctx, op, s, g)
		if err != nil {
			return err
		}
		if to == s.targetID {
			return nil
		}
	case g.ReplicationStatus != ferry.ReplicationFailedOver && !s.isTarget():
		return nil
	}
	return drivers.Errorf(drivers.Permanent, op, "group %s (replication_status %s) is not served by %s: snapshot it where it is active", g.label(), g.ReplicationStatus, s.name)
}

// groupSnapshot takes a group snapshot of each group holding resources
// (the whole group: Cinder snapshots groups, not some of their volumes)
// and waits until Cinder has it available. Snapshot.ID is the group
// snapshot ids, comma-separated; Seqs names every volume it covers with 0:
// Cinder has no write sequence numbers, so a final sync cannot wait for a
// point (failover_replication of a group in planned mode is the array's
// own orderly switch).
func (a *Adapter) groupSnapshot(ctx context.Context, key, backend string, resources []string) (drivers.Snapshot, error) {
	const op = "storage.snapshot_group"
	return mutate(ctx, a, op, key, func() (drivers.Snapshot, error) {
		snap := drivers.Snapshot{Seqs: map[string]int64{}}
		s, err := a.groupSide(ctx, op, backend, mvGroups, "a group snapshot")
		if err != nil {
			return snap, err
		}
		groups, err := a.resolveGroups(ctx, op, s, resources, false, false)
		if err != nil {
			return snap, err
		}
		var ids []string
		for _, g := range groups {
			if err := a.activeSideCheck(ctx, op, s, g); err != nil {
				return snap, err
			}
			id, err := a.ensureGroupSnapshot(ctx, op, s, g, derivedName("ferry-snapshot-", key+"/"+g.ID), "Ferry snapshot_group under key "+key)
			if err != nil {
				return snap, err
			}
			ids = append(ids, id)
		}
		// resolveGroups found every resource in one of these groups.
		for _, r := range resources {
			snap.Seqs[r] = 0
		}
		snap.ID, snap.Taken = strings.Join(ids, ","), time.Now().UTC()
		return snap, nil
	})
}

// derivedName is a Cinder name derived from an idempotency key, so a call
// retried after a partial failure finds what its first try made.
func derivedName(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
	return prefix + hex.EncodeToString(sum[:8])
}

// ensureGroupSnapshot takes (or finds, by name) a group snapshot of g and
// waits until it is available.
func (a *Adapter) ensureGroupSnapshot(ctx context.Context, op string, s groupSide, g rgroup, name, description string) (string, error) {
	sc, v := s.svc.site.sc, s.ver()
	rctx, cancel := a.withTimeout(ctx)
	existing, err := listGroupSnapshots(rctx, sc, v)
	cancel()
	if err != nil {
		return "", fmt.Errorf("list group snapshots: %w", err)
	}
	id := ""
	for _, gs := range existing {
		if gs.Name == name && gs.GroupID == g.ID {
			id = gs.ID
		}
	}
	if id == "" {
		rctx, cancel := a.withTimeout(ctx)
		id, err = createGroupSnapshot(rctx, sc, v, g.ID, name, description)
		cancel()
		if err != nil {
			return "", fmt.Errorf("snapshot group %s: %w", g.label(), err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	for {
		rctx, rcancel := a.withTimeout(wctx)
		gs, err := getGroupSnapshot(rctx, sc, v, id)
		rcancel()
		switch {
		case err == nil && gs == nil:
			return "", drivers.Errorf(drivers.Retryable, op, "group snapshot %s of group %s vanished while it was being made", id, g.label())
		case err == nil && gs.Status == "available":
			return id, nil
		case err == nil && gs.Status == "error":
			return "", drivers.Errorf(drivers.Permanent, op, "Cinder failed group snapshot %s of group %s (status error; see cinder-volume's log)", id, g.label())
		}
		select {
		case <-wctx.Done():
			if err == nil {
				err = fmt.Errorf("group snapshot %s of group %s still %s after %s", id, g.label(), gs.Status, a.cfg.SettleTimeout)
			}
			return "", drivers.Errorf(drivers.Retryable, op, "%v", err)
		case <-time.After(pollEvery):
		}
	}
}

// groupTestFailoverStart makes a drill copy of the groups holding resources:
// a group snapshot of each, and a new group with new volumes made from it
// (create-from-src). It returns the new volumes' ids, one per resource, in
// the order asked.
//
// This is what Cinder's API offers, and what it is not: in Cinder's model
// the secondary array sits behind the primary's cinder-volume service and
// has no API of its own, so the copy is made through that service, on the
// array that serves the group now, from a group snapshot of the volumes
// there: a consistent point of the active data, not a clone of the
// secondary array's copy. Replication keeps running. The copy's group does
// not replicate (its replication is disabled).
func (a *Adapter) groupTestFailoverStart(ctx context.Context, key, backend string, resources []string) ([]string, error) {
	const op = "storage.test_failover_start"
	return mutate(ctx, a, op, key, func() ([]string, error) {
		s, err := a.groupSide(ctx, op, backend, mvGroups, "a drill copy of a volume group (group snapshot and create-from-src)")
		if err != nil {
			return nil, err
		}
		groups, err := a.resolveGroups(ctx, op, s, resources, false, false)
		if err != nil {
			return nil, err
		}
		// Cinder copies a group snapshot through the group's service onto
		// the array that service writes to: the primary's while the group
		// is enabled, the target's once it failed over there. A drill at a
		// target's site while the group is active at the primary would get
		// a copy at the primary, which the DR site's servers cannot use.
		site := a.cfg.Backends[s.name].Site
		for _, g := range groups {
			activeAt := s.svc.cfg.Site
			if g.ReplicationStatus == ferry.ReplicationFailedOver {
				// Failed over: active at the target, which is this backend
				// when the drill asks from the target's side; from the
				// service's side, at its targets' site.
				activeAt = site
				if !s.isTarget() {
					activeAt = a.targetSite(s.svc.name)
				}
			}
			if activeAt != site {
				return nil, drivers.Errorf(drivers.Permanent, op, "a drill at %s (%s) needs a copy of the replica there, but Cinder copies group %s through %s onto the array it is active on, at %s: Cinder has no call that copies a replica at its replication target (use the array's own snapshot of the replica, or drill where the group is active)", site, s.name, g.label(), s.svc.name, activeAt)
			}
		}
		sc, v := s.svc.site.sc, s.ver()
		cloneOf := map[string]string{} // source volume id -> copy's id
		for _, g := range groups {
			name := derivedName(groupDrillPrefix, key+"/"+g.ID)
			desc := fmt.Sprintf("Ferry drill copy of group %s under key %s", g.ID, key)
			snapID, err := a.ensureGroupSnapshot(ctx, op, s, g, name, desc)
			if err != nil {
				return nil, err
			}
			copyID, err := a.ensureCopy(ctx, op, s, g, snapID, name, desc)
			if err != nil {
				return nil, err
			}
			var copies []gvolume
			err = a.call(ctx, func(ctx context.Context) (err error) {
				copies, err = groupVolumes(ctx, sc, v, copyID)
				return err
			})
			for _, c := range copies {
				var src string
				if err == nil {
					err = a.call(ctx, func(ctx context.Context) (err error) {
						src, err = snapshotVolume(ctx, sc, v, str(c.SnapshotID))
						return err
					})
				}
				cloneOf[src] = c.ID
			}
			if err != nil {
				return nil, fmt.Errorf("read the volumes of drill group %s: %w", copyID, err)
			}
		}
		byName := map[string]string{}
		for _, g := range groups {
			for _, vol := range g.named {
				byName[vol.Name], byName[vol.ID] = vol.ID, vol.ID
			}
		}
		out := make([]string, 0, len(resources))
		for _, r := range resources {
			id, ok := cloneOf[byName[r]]
			if !ok {
				return nil, drivers.Errorf(drivers.Permanent, op, "Cinder made no copy of volume %s in the drill group", r)
			}
			out = append(out, id)
		}
		return out, nil
	})
}

// ensureCopy makes (or finds, by name) the group created from the group
// snapshot snapID and waits until Cinder has it available.
func (a *Adapter) ensureCopy(ctx context.Context, op string, s groupSide, g rgroup, snapID, name, desc string) (string, error) {
	sc, v := s.svc.site.sc, s.ver()
	rctx, cancel := a.withTimeout(ctx)
	all, err := listGroups(rctx, sc, v)
	cancel()
	if err != nil {
		return "", fmt.Errorf("list groups: %w", err)
	}
	id := ""
	for _, cg := range all {
		if cg.Name == name && str(cg.GroupSnapshotID) == snapID {
			id = cg.ID
		}
	}
	if id == "" {
		rctx, cancel := a.withTimeout(ctx)
		id, err = createGroupFromSnapshot(rctx, sc, v, snapID, name, desc)
		cancel()
		if err != nil {
			return "", fmt.Errorf("create a group from group snapshot %s of group %s: %w", snapID, g.label(), err)
		}
	}
	got, err := a.waitGroup(ctx, op, s, id, "creation", func(cg *cgroup) bool {
		return cg != nil && cg.Status != "creating"
	})
	if err != nil {
		return "", err
	}
	if got.Status != "available" {
		return "", drivers.Errorf(drivers.Permanent, op, "Cinder made drill group %s from group snapshot %s with status %s (see cinder-volume's log)", id, snapID, got.Status)
	}
	return id, nil
}

// stopPlan is what a drill's copies are: their groups and the group
// snapshots they were made from. The ledger keeps it, so a stop retried
// after the groups went still deletes the snapshots.
type stopPlan struct {
	Groups    []string `json:"groups"`
	Snapshots []string `json:"snapshots"`
}

// groupTestFailoverStop deletes the drill groups that hold the clones,
// with their volumes, then the group snapshots they were made from. It
// deletes only groups TestFailoverStart made (by name and origin), and
// what is gone already counts as deleted.
func (a *Adapter) groupTestFailoverStop(ctx context.Context, key, backend string, clones []string) error {
	const op = "storage.test_failover_stop"
	_, err := mutate(ctx, a, op, key, func() (struct{}, error) {
		s, err := a.groupSide(ctx, op, backend, mvGroups, "deleting a drill copy of a volume group")
		if err != nil {
			return struct{}{}, err
		}
		plan, err := mutate(ctx, a, op+"/plan", key+"/plan", func() (stopPlan, error) {
			return a.planStop(ctx, op, s, clones)
		})
		if err != nil {
			return struct{}{}, err
		}
		sc, v := s.svc.site.sc, s.ver()
		for _, id := range plan.Groups {
			g, err := a.waitGroup(ctx, op, s, id, "settling", func(g *cgroup) bool {
				return g == nil || (g.Status != "creating" && g.Status != "updating")
			})
			if err != nil {
				return struct{}{}, err
			}
			if g == nil || g.Status == "deleting" {
				continue
			}
			rctx, cancel := a.withTimeout(ctx)
			err = deleteGroup(rctx, sc, v, id, true)
			cancel()
			if err != nil && !isNotFound(err) {
				return struct{}{}, fmt.Errorf("delete drill group %s with its volumes: %w", id, err)
			}
		}
		for _, id := range plan.Groups {
			g, err := a.waitGroup(ctx, op, s, id, "deletion", func(g *cgroup) bool { return g == nil || g.Status == "error" })
			if err != nil {
				return struct{}{}, err
			}
			if g != nil {
				return struct{}{}, drivers.Errorf(drivers.Permanent, op, "Cinder failed to delete drill group %s (status error; see cinder-volume's log)", id)
			}
		}
		for _, id := range plan.Snapshots {
			if err := a.deleteSnapshotAndWait(ctx, op, s, id); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

// planStop finds the drill groups of the clones and their group snapshots,
// refusing any volume that is not in a group TestFailoverStart made.
func (a *Adapter) planStop(ctx context.Context, op string, s groupSide, clones []string) (stopPlan, error) {
	plan := stopPlan{Groups: []string{}, Snapshots: []string{}}
	sc, v := s.svc.site.sc, s.ver()
	var vols []gvolume
	err := a.call(ctx, func(ctx context.Context) (err error) {
		vols, err = groupVolumes(ctx, sc, v, "")
		return err
	})
	if err != nil {
		return plan, fmt.Errorf("list the volumes at site %s: %w", s.svc.cfg.Site, err)
	}
	byID := map[string]gvolume{}
	for _, vol := range vols {
		byID[vol.ID] = vol
	}
	seen := map[string]bool{}
	for _, id := range clones {
		vol, ok := byID[id]
		if !ok {
			continue // deleted already
		}
		gid := str(vol.GroupID)
		if gid == "" {
			return plan, drivers.Errorf(drivers.Permanent, op, "volume %s is in no group: it is no drill copy of Ferry's, and Ferry deletes only those", id)
		}
		if seen[gid] {
			continue
		}
		seen[gid] = true
		var g *cgroup
		err := a.call(ctx, func(ctx context.Context) (err error) {
			g, err = getGroup(ctx, sc, v, gid)
			return err
		})
		if err != nil {
			return plan, fmt.Errorf("read group %s: %w", gid, err)
		}
		if g == nil {
			continue
		}
		if !strings.HasPrefix(g.Name, groupDrillPrefix) || str(g.GroupSnapshotID) == "" {
			return plan, drivers.Errorf(drivers.Permanent, op, "volume %s is in group %s (%q), which is no drill copy of Ferry's (those are named %s… and made from a group snapshot): Ferry deletes only those", id, gid, g.Name, groupDrillPrefix)
		}
		plan.Groups = append(plan.Groups, gid)
		plan.Snapshots = append(plan.Snapshots, *g.GroupSnapshotID)
	}
	return plan, nil
}

// deleteSnapshotAndWait deletes a group snapshot and waits until it is
// gone.
func (a *Adapter) deleteSnapshotAndWait(ctx context.Context, op string, s groupSide, id string) error {
	sc, v := s.svc.site.sc, s.ver()
	wctx, cancel := context.WithTimeout(ctx, a.cfg.SettleTimeout)
	defer cancel()
	sent := false
	for {
		rctx, rcancel := a.withTimeout(wctx)
		gs, err := getGroupSnapshot(rctx, sc, v, id)
		if err == nil && gs != nil && !sent && (gs.Status == "available" || gs.Status == "error") {
			err = deleteGroupSnapshot(rctx, sc, v, id)
			sent = err == nil
		}
		rcancel()
		switch {
		case err == nil && gs == nil:
			return nil
		case err == nil && gs.Status == "error_deleting":
			return drivers.Errorf(drivers.Permanent, op, "Cinder failed to delete group snapshot %s (status error_deleting; see cinder-volume's log)", id)
		}
		select {
		case <-wctx.Done():
			if err == nil {
				err = fmt.Errorf("group snapshot %s still %s after %s", id, gs.Status, a.cfg.SettleTimeout)
			}
			return drivers.Errorf(drivers.Retryable, op, "%v", err)
		case <-time.After(pollEvery):
		}
	}
}
