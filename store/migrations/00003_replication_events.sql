-- +goose Up
-- Replication events raised by the replication monitor: RPO violations
-- (warning at 2x the group's RPO, critical at 3x or in error), their
-- resolution, and repairs of broken relationships. Events go with their
-- group.
CREATE TABLE replication_events (
    id          text PRIMARY KEY,
    group_name  text NOT NULL REFERENCES protection_groups (name) ON DELETE CASCADE,
    resource    text NOT NULL,
    site        text NOT NULL DEFAULT '',
    backend     text NOT NULL DEFAULT '',
    severity    text NOT NULL CHECK (severity IN ('warning', 'critical', 'resolved')),
    lag_seconds double precision NOT NULL DEFAULT 0,
    rpo_seconds integer NOT NULL DEFAULT 0,
    message     text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    recorded    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replication_events_group_at_idx ON replication_events (group_name, at DESC, id DESC);
CREATE INDEX replication_events_at_idx ON replication_events (at DESC, id DESC);

-- +goose Down
DROP TABLE replication_events;
