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

The active backend id also survives a restart: cinder-volume passes the
service's active_backend_id to the driver's constructor.
"""

from oslo_log import log as logging

from cinder import exception
from cinder.objects import fields
from cinder.tests import fake_driver

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
