"""A Cinder volume driver for Ferry's tests that can fail over.

Cinder's stock fake drivers (cinder.tests.fake_driver) report replication in
their pool but cannot fail over. This subclass of FakeLoggingVolumeDriver
adds exactly what a replication-capable driver (v2.1 and active-active)
tells Cinder, and keeps no data:

- stats say replication_enabled, with the replication_device backend ids as
  replication_targets, so cinder-volume sets the service's
  replication_status to enabled at start;
- a volume of a replicated type (extra spec replication_enabled='<is> True')
  is created with replication_status enabled, any other with disabled (as
  replication drivers do: Cinder leaves it empty otherwise, and its
  failover then treats the volume as replicated);
- failover_host (a single service) and failover (a clustered service) accept
  a backend_id from replication_device, or None for the first one, or
  'default' to fail back; anything else raises InvalidReplicationTarget, as
  real drivers do (Cinder logs it and keeps the service's status);
- failover_completed (sent by Cinder to every member of a cluster) records
  the active backend id in this member.

Generic volume groups (Cinder's "Tiramisu" group replication, API 3.38+,
and group snapshots, 3.14+) work as a group-capable replication driver
tells Cinder:

- the pool says group_replication_enabled,
  consistent_group_replication_enabled and
  consistent_group_snapshot_enabled, as group-capable drivers do (Zed's
  scheduler does not match a group type's group specs against them: its
  capabilities filter reads a type's extra_specs, which group types do not
  have; they show in get_pools);
- create_group, update_group, delete_group, create_group_snapshot,
  delete_group_snapshot and create_group_from_src return the model updates
  the volume manager applies (nothing is stored: clones and snapshots are
  rows in Cinder's database only, like the volumes); a group made from a
  source does not replicate (its volumes say disabled);
- enable_replication and disable_replication set the group and its volumes
  enabled or disabled;
- failover_replication fails a group over to a replication_device
  backend_id (None: the first one), or back with 'default'; any other id
  raises InvalidReplicationTarget, as real drivers refuse it, and Cinder
  then puts the group and its volumes in error. A target whose
  "<state_path>/ferry-fake-target-down-<backend_id>" file exists is a
  secondary array that does not answer: failing over to it raises
  VolumeBackendAPIException (tests create the file to see what Cinder does
  with a driver that fails after the API answered 202);
- get_replication_error_status reports nothing: this fake never says
  replication_status error in its stats, so Cinder never asks, and the
  answer says so should it ever.

The active backend id also survives a restart: cinder-volume passes the
service's active_backend_id to the driver's constructor.
"""

import os

from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder.objects import fields
from cinder.tests import fake_driver

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

FAILBACK = 'default'


class FerryFakeDriver(fake_driver.FakeLoggingVolumeDriver):

    # Members of a cluster share the backend (Active-Active).
    SUPPORTS_ACTIVE_ACTIVE = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._active_backend_id = kwargs.get('active_backend_id') or None
        # The stock fake calls every backend 'fake'; the tests tell the
        # standalone backend from the clustered one by volume_backend_name.
        self.backend_name = (
            self.configuration.safe_get('volume_backend_name') or 'fake')

    def _targets(self):
        devices = self.configuration.safe_get('replication_device') or []
        return [d['backend_id'] for d in devices if d.get('backend_id')]

    def _update_volume_stats(self):
        super()._update_volume_stats()
        targets = self._targets()
        self._stats['replication_enabled'] = bool(targets)
        self._stats['replication_targets'] = targets
        self._stats['replication_type'] = ['async']
        self._stats['active_backend_id'] = self._active_backend_id
        for pool in self._stats.get('pools', []):
            # The keys of a group type's group specs; shown in get_pools.
            pool['group_replication_enabled'] = bool(targets)
            pool['consistent_group_replication_enabled'] = bool(targets)
            pool['consistent_group_snapshot_enabled'] = True

    def create_volume(self, volume):
        # Say which volumes are replicated: Cinder (Zed) leaves a new
        # volume's replication_status empty, and failover treats every
        # volume that is not disabled or not-capable as replicated.
        update = super().create_volume(volume) or {}
        if (update.get('replication_status') ==
                fields.ReplicationStatus.DISABLED and self._targets()):
            update['replication_status'] = fields.ReplicationStatus.ENABLED
        else:
            update['replication_status'] = fields.ReplicationStatus.DISABLED
        return update

    def _choose_target(self, secondary_id):
        targets = self._targets()
        if not targets:
            raise exception.InvalidReplicationTarget(
                reason='no replication_device is configured')
        if secondary_id == FAILBACK:
            if not self._active_backend_id:
                raise exception.InvalidReplicationTarget(
                    reason='not failed over: nothing to fail back')
            return FAILBACK
        if secondary_id is None:
            secondary_id = targets[0]
        if secondary_id not in targets:
            raise exception.InvalidReplicationTarget(
                reason='%s is not a replication_device backend_id (%s)' %
                (secondary_id, ', '.join(targets)))
        if secondary_id == self._active_backend_id:
            raise exception.InvalidReplicationTarget(
                reason='already failed over to %s' % secondary_id)
        return secondary_id

    def _volume_updates(self, volumes, target):
        status = (fields.ReplicationStatus.ENABLED if target == FAILBACK
                  else fields.ReplicationStatus.FAILED_OVER)
        return [{'volume_id': v.id, 'updates': {'replication_status': status}}
                for v in volumes]

    def failover_host(self, context, volumes, secondary_id=None, groups=None):
        target = self._choose_target(secondary_id)
        LOG.info('ferry fake driver: failover_host to %s', target)
        self._active_backend_id = None if target == FAILBACK else target
        return target, self._volume_updates(volumes, target), []

    def failover(self, context, volumes, secondary_id=None, groups=None):
        # Active-active: this member moves the volumes; every member
        # (this one too) switches in failover_completed.
        target = self._choose_target(secondary_id)
        LOG.info('ferry fake driver: failover (cluster) to %s', target)
        return target, self._volume_updates(volumes, target), []

    def failover_completed(self, context, active_backend_id=None):
        LOG.info('ferry fake driver: failover_completed, active %s',
                 active_backend_id)
        self._active_backend_id = active_backend_id or None

    # --- generic volume groups ------------------------------------------

    def create_group(self, context, group):
        LOG.info('ferry fake driver: create_group %s', group.id)
        update = {'status': fields.GroupStatus.AVAILABLE}
        if group.is_replicated:
            update['replication_status'] = fields.ReplicationStatus.DISABLED
        return update

    def update_group(self, context, group, add_volumes=None,
                     remove_volumes=None):
        LOG.info('ferry fake driver: update_group %s', group.id)
        return None, None, None

    def delete_group(self, context, group, volumes):
        LOG.info('ferry fake driver: delete_group %s (%d volumes)',
                 group.id, len(volumes))
        return ({'status': fields.GroupStatus.DELETED},
                [{'id': v.id, 'status': 'deleted'} for v in volumes])

    def create_group_snapshot(self, context, group_snapshot, snapshots):
        LOG.info('ferry fake driver: create_group_snapshot %s of group %s',
                 group_snapshot.id, group_snapshot.group_id)
        return ({'status': fields.GroupSnapshotStatus.AVAILABLE},
                [{'id': s.id, 'status': fields.SnapshotStatus.AVAILABLE}
                 for s in snapshots])

    def delete_group_snapshot(self, context, group_snapshot, snapshots):
        LOG.info('ferry fake driver: delete_group_snapshot %s',
                 group_snapshot.id)
        return ({'status': fields.GroupSnapshotStatus.DELETED},
                [{'id': s.id, 'status': fields.SnapshotStatus.DELETED}
                 for s in snapshots])

    def create_group_from_src(self, context, group, volumes,
                              group_snapshot=None, snapshots=None,
                              source_group=None, source_vols=None):
        source = (('group snapshot %s' % group_snapshot.id) if group_snapshot
                  else ('group %s' % (source_group.id if source_group
                                      else None)))
        LOG.info('ferry fake driver: create_group_from_src %s from %s',
                 group.id, source)
        # A copy is a new group: it does not replicate until asked.
        return ({'status': fields.GroupStatus.AVAILABLE},
                [{'id': v.id,
                  'replication_status': fields.ReplicationStatus.DISABLED}
                 for v in volumes])

    # --- group replication (Tiramisu) ------------------------------------

    def _group_updates(self, group, volumes, status):
        return ({'replication_status': status},
                [{'id': v.id, 'replication_status': status} for v in volumes])

    def enable_replication(self, context, group, volumes):
        if not self._targets():
            raise exception.InvalidReplicationTarget(
                reason='no replication_device is configured')
        LOG.info('ferry fake driver: enable_replication of group %s',
                 group.id)
        return self._group_updates(group, volumes,
                                   fields.ReplicationStatus.ENABLED)

    def disable_replication(self, context, group, volumes):
        LOG.info('ferry fake driver: disable_replication of group %s',
                 group.id)
        return self._group_updates(group, volumes,
                                   fields.ReplicationStatus.DISABLED)

    def failover_replication(self, context, group, volumes,
                             secondary_backend_id=None):
        targets = self._targets()
        target = secondary_backend_id
        if target is None and targets:
            target = targets[0]
        if target != FAILBACK and target not in targets:
            raise exception.InvalidReplicationTarget(
                reason='%s is not a replication_device backend_id (%s)' %
                (target, ', '.join(targets)))
        if target != FAILBACK and os.path.exists(os.path.join(
                CONF.state_path, 'ferry-fake-target-down-' + target)):
            raise exception.VolumeBackendAPIException(
                data='secondary array %s does not answer' % target)
        LOG.info('ferry fake driver: failover_replication of group %s to %s',
                 group.id, target)
        status = (fields.ReplicationStatus.ENABLED if target == FAILBACK
                  else fields.ReplicationStatus.FAILED_OVER)
        return self._group_updates(group, volumes, status)

    def get_replication_error_status(self, context, groups):
        return [], []
