package openstack

// Cinder's generic volume groups, group snapshots and group replication,
// which gophercloud v2.15.0 does not wrap (it has no blockstorage/v3 groups,
// grouptypes or groupsnapshots package, and its volumes.Volume has no
// group_id): the one place Ferry builds these requests itself, through
// gophercloud's ServiceClient (auth, errors as
// gophercloud.ErrUnexpectedResponseCode).
//
//	GET  /volumes/detail?all_tenants=1[&group_id=]             group_id 3.13+ (filter 3.10+)
//	GET  /groups/{id}                                           3.13+ (replication_status 3.38+, group_snapshot_id 3.14+)
//	GET  /group_types/{id}                                      3.11+
//	POST /groups/{id}/action {"enable_replication": {}}         3.38+, 202
//	POST /groups/{id}/action {"disable_replication": {}}        3.38+, 202
//	POST /groups/{id}/action {"failover_replication": {"allow_attached_volume", "secondary_backend_id"}}  3.38+, 202
//	POST /groups/{id}/action {"list_replication_targets": {}}   3.38+, 200 {"replication_targets": [{"backend_id", ...}]}
//	POST /groups/{id}/action {"delete": {"delete-volumes": true}}                    3.13+, 202
//	POST /groups/action {"create-from-src": {"group_snapshot_id", "name", "description"}}  3.14+, 202
//	POST /group_snapshots {"group_snapshot": {"group_id", "name", "description"}}    3.14+, 202
//	GET  /group_snapshots/{id}, GET /group_snapshots/detail, DELETE /group_snapshots/{id}  3.14+
//	GET  /snapshots/{id}                                        volume_id of a group snapshot's member

import (
	"context"
	"net/url"

	"github.com/gophercloud/gophercloud/v2"
)

// gvolume is a volume as the group calls read it.
type gvolume struct {
	ID                string  `json:"id"`
	Name              string  `json:"name"`
	Status            string  `json:"status"`
	ReplicationStatus string  `json:"replication_status"`
	GroupID           *string `json:"group_id"`
	SnapshotID        *string `json:"snapshot_id"`
	Host              string  `json:"os-vol-host-attr:host"`
}

// label names a volume in messages and results: its name, else its id.
func (v gvolume) label() string {
	if v.Name != "" {
		return v.Name
	}
	return v.ID
}

// cgroup is a generic volume group as GET /groups/{id} shows it.
type cgroup struct {
	ID                string  `json:"id"`
	Name              string  `json:"name"`
	Status            string  `json:"status"`
	ReplicationStatus string  `json:"replication_status"`
	GroupType         string  `json:"group_type"`
	GroupSnapshotID   *string `json:"group_snapshot_id"`
}

// groupSnap is a group snapshot.
type groupSnap struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	GroupID string `json:"group_id"`
	Status  string `json:"status"`
}

// groupVolumes lists every volume of the site (all projects), or only the
// members of one group.
func groupVolumes(ctx context.Context, sc *gophercloud.ServiceClient, v mv, groupID string) ([]gvolume, error) {
	c := at(sc, v)
	q := url.Values{"all_tenants": {"1"}}
	if groupID != "" {
		q.Set("group_id", groupID)
	}
	next := c.ServiceURL("volumes", "detail") + "?" + q.Encode()
	var out []gvolume
	for next != "" {
		var page struct {
			Volumes []gvolume `json:"volumes"`
			Links   []struct {
				Rel  string `json:"rel"`
				Href string `json:"href"`
			} `json:"volumes_links"`
		}
		if _, err := c.Get(ctx, next, &page, nil); err != nil {
			return nil, err
		}
		out = append(out, page.Volumes...)
		next = ""
		for _, l := range page.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
	}
	return out, nil
}

// getGroup reads a group; a group that is gone is nil.
func getGroup(ctx context.Context, sc *gophercloud.ServiceClient, v mv, id string) (*cgroup, error) {
	var body struct {
		Group cgroup `json:"group"`
	}
	c := at(sc, v)
	if _, err := c.Get(ctx, c.ServiceURL("groups", id), &body, nil); err != nil {
		if gophercloud.ResponseCodeIs(err, 404) {
			return nil, nil
		}
		return nil, err
	}
	return &body.Group, nil
}

// listGroups lists every group of the site (all projects).
func listGroups(ctx context.Context, sc *gophercloud.ServiceClient, v mv) ([]cgroup, error) {
	var body struct {
		Groups []cgroup `json:"groups"`
	}
	c := at(sc, v)
	_, err := c.Get(ctx, c.ServiceURL("groups", "detail")+"?all_tenants=1", &body, nil)
	return body.Groups, err
}

// groupSpecs reads a group type's group specs.
func groupSpecs(ctx context.Context, sc *gophercloud.ServiceClient, v mv, typeID string) (map[string]string, error) {
	var body struct {
		GroupType struct {
			GroupSpecs map[string]string `json:"group_specs"`
		} `json:"group_type"`
	}
	c := at(sc, v)
	_, err := c.Get(ctx, c.ServiceURL("group_types", typeID), &body, nil)
	return body.GroupType.GroupSpecs, err
}

// groupAction posts one action on a group. Cinder answers 202: the work,
// and a driver's refusal, happen later in cinder-volume.
func groupAction(ctx context.Context, sc *gophercloud.ServiceClient, v mv, id, action string, args map[string]any) error {
	if args == nil {
		args = map[string]any{}
	}
	c := at(sc, v)
	_, err := c.Post(ctx, c.ServiceURL("groups", id, "action"), map[string]any{action: args}, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
	return err
}

// replicationTargets asks cinder-volume (a synchronous RPC) for the
// group's replication targets and keeps only their backend_ids: an admin
// gets every key of each replication_device, which on real arrays holds
// their addresses and passwords, and those never leave this function.
func replicationTargets(ctx context.Context, sc *gophercloud.ServiceClient, v mv, id string) ([]string, error) {
	var body struct {
		Targets []map[string]any `json:"replication_targets"`
	}
	c := at(sc, v)
	_, err := c.Post(ctx, c.ServiceURL("groups", id, "action"), map[string]any{"list_replication_targets": map[string]any{}}, &body, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(body.Targets))
	for _, t := range body.Targets {
		if id, ok := t["backend_id"].(string); ok && id != "" {
			out = append(out, id)
		}
	}
	return out, nil
}

// createGroupFromSnapshot makes a new group, with new volumes, from a group
// snapshot, and returns its id.
func createGroupFromSnapshot(ctx context.Context, sc *gophercloud.ServiceClient, v mv, snapID, name, description string) (string, error) {
	var body struct {
		Group struct {
			ID string `json:"id"`
		} `json:"group"`
	}
	c := at(sc, v)
	req := map[string]any{"create-from-src": map[string]any{"group_snapshot_id": snapID, "name": name, "description": description}}
	_, err := c.Post(ctx, c.ServiceURL("groups", "action"), req, &body, &gophercloud.RequestOpts{OkCodes: []int{202}})
	return body.Group.ID, err
}

// deleteGroup deletes a group and, with deleteVolumes, its volumes.
func deleteGroup(ctx context.Context, sc *gophercloud.ServiceClient, v mv, id string, deleteVolumes bool) error {
	return groupAction(ctx, sc, v, id, "delete", map[string]any{"delete-volumes": deleteVolumes})
}

// createGroupSnapshot snapshots a group and returns the group snapshot id.
func createGroupSnapshot(ctx context.Context, sc *gophercloud.ServiceClient, v mv, groupID, name, description string) (string, error) {
	var body struct {
		GroupSnapshot struct {
			ID string `json:"id"`
		} `json:"group_snapshot"`
	}
	c := at(sc, v)
	req := map[string]any{"group_snapshot": map[string]any{"group_id": groupID, "name": name, "description": description}}
	_, err := c.Post(ctx, c.ServiceURL("group_snapshots"), req, &body, &gophercloud.RequestOpts{OkCodes: []int{202}})
	return body.GroupSnapshot.ID, err
}

// getGroupSnapshot reads a group snapshot; one that is gone is nil.
func getGroupSnapshot(ctx context.Context, sc *gophercloud.ServiceClient, v mv, id string) (*groupSnap, error) {
	var body struct {
		GroupSnapshot groupSnap `json:"group_snapshot"`
	}
	c := at(sc, v)
	if _, err := c.Get(ctx, c.ServiceURL("group_snapshots", id), &body, nil); err != nil {
		if gophercloud.ResponseCodeIs(err, 404) {
			return nil, nil
		}
		return nil, err
	}
	return &body.GroupSnapshot, nil
}

// listGroupSnapshots lists every group snapshot of the site.
func listGroupSnapshots(ctx context.Context, sc *gophercloud.ServiceClient, v mv) ([]groupSnap, error) {
	var body struct {
		GroupSnapshots []groupSnap `json:"group_snapshots"`
	}
	c := at(sc, v)
	_, err := c.Get(ctx, c.ServiceURL("group_snapshots", "detail")+"?all_tenants=1", &body, nil)
	return body.GroupSnapshots, err
}

// deleteGroupSnapshot deletes a group snapshot; one already gone is no
// error.
func deleteGroupSnapshot(ctx context.Context, sc *gophercloud.ServiceClient, v mv, id string) error {
	c := at(sc, v)
	_, err := c.Delete(ctx, c.ServiceURL("group_snapshots", id), &gophercloud.RequestOpts{OkCodes: []int{202}})
	if gophercloud.ResponseCodeIs(err, 404) {
		return nil
	}
	return err
}

// snapshotVolume says which volume a snapshot was taken of.
func snapshotVolume(ctx context.Context, sc *gophercloud.ServiceClient, v mv, id string) (string, error) {
	var body struct {
		Snapshot struct {
			VolumeID string `json:"volume_id"`
		} `json:"snapshot"`
	}
	c := at(sc, v)
	_, err := c.Get(ctx, c.ServiceURL("snapshots", id), &body, nil)
	return body.Snapshot.VolumeID, err
}

// isReplicatedType says whether group specs make a replication group type,
// exactly as Cinder's Group.is_replicated does (it compares the string).
func isReplicatedType(specs map[string]string) bool {
	return specs["consistent_group_replication_enabled"] == "<is> True" || specs["group_replication_enabled"] == "<is> True"
}

func isNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, 404) }
