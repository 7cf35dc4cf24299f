-- Ferry's inventory (sites, backends, protection groups, replicas) and run
-- records. Observed state (replication_status, active_backend_id, frozen,
-- active_site, replicas) lives in its own columns so that a PUT of the
-- declared shape never overwrites it.

-- +goose Up
CREATE TABLE sites (
    name        text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    labels      jsonb,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backends (
    name               text PRIMARY KEY,
    site               text NOT NULL REFERENCES sites (name),
    type               text NOT NULL DEFAULT '',
    replication_status text NOT NULL DEFAULT '',
    active_backend_id  text NOT NULL DEFAULT '',
    frozen             boolean NOT NULL DEFAULT false,
    created            timestamptz NOT NULL DEFAULT now(),
    updated            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backends_site_idx ON backends (site);

-- The service hosts of an active-active cluster; each holds its own idea of
-- the active backend.
CREATE TABLE backend_members (
    backend           text NOT NULL REFERENCES backends (name) ON DELETE CASCADE,
    member            text NOT NULL,
    position          integer NOT NULL,
    active_backend_id text NOT NULL DEFAULT '',
    PRIMARY KEY (backend, member)
);

CREATE TABLE backend_replication_targets (
    backend        text NOT NULL REFERENCES backends (name) ON DELETE CASCADE,
    target_id      text NOT NULL,
    position       integer NOT NULL,
    target_backend text NOT NULL REFERENCES backends (name),
    PRIMARY KEY (backend, target_id)
);
CREATE INDEX backend_replication_targets_target_idx ON backend_replication_targets (target_backend);

-- spec holds the whole ferry.Group as declared; the columns beside it are
-- what queries filter and order on, plus the observed active_site (NULL
-- means the primary site).
CREATE TABLE protection_groups (
    name         text PRIMARY KEY,
    project      text NOT NULL DEFAULT '',
    primary_site text NOT NULL REFERENCES sites (name),
    dr_site      text NOT NULL REFERENCES sites (name),
    active_site  text REFERENCES sites (name),
    priority     integer NOT NULL DEFAULT 0,
    spec         jsonb NOT NULL,
    created      timestamptz NOT NULL DEFAULT now(),
    updated      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX protection_groups_project_idx ON protection_groups (project);
CREATE INDEX protection_groups_primary_site_idx ON protection_groups (primary_site, priority DESC);
CREATE INDEX protection_groups_dr_site_idx ON protection_groups (dr_site);
CREATE INDEX protection_groups_active_site_idx ON protection_groups (active_site);

-- The backends a group's volumes and shares live on, derived from spec.
CREATE TABLE group_backends (
    group_name text NOT NULL REFERENCES protection_groups (name) ON DELETE CASCADE,
    backend    text NOT NULL REFERENCES backends (name),
    PRIMARY KEY (group_name, backend)
);
CREATE INDEX group_backends_backend_idx ON group_backends (backend);

-- Last observed state of each replica of a group's volumes and shares.
CREATE TABLE replicas (
    group_name  text NOT NULL REFERENCES protection_groups (name) ON DELETE CASCADE,
    resource    text NOT NULL,
    kind        text NOT NULL DEFAULT '',
    site        text NOT NULL,
    backend     text NOT NULL DEFAULT '',
    state       text NOT NULL DEFAULT '',
    seq         bigint NOT NULL DEFAULT 0,
    lag_seconds double precision NOT NULL DEFAULT 0,
    observed    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, resource, site)
);

-- Run records. id is Temporal's run id. group_name is not a foreign key: a
-- run's record outlives its group.
CREATE TABLE runs (
    id           text PRIMARY KEY,
    workflow_id  text NOT NULL DEFAULT '',
    kind         text NOT NULL DEFAULT '',
    group_name   text NOT NULL DEFAULT '',
    site         text NOT NULL DEFAULT '',
    backend      text NOT NULL DEFAULT '',
    mode         text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT '',
    requested_by text NOT NULL DEFAULT '',
    created      timestamptz NOT NULL DEFAULT now(),
    ended        timestamptz,
    rpo_seconds  double precision,
    rto_seconds  double precision,
    writes_lost  bigint,
    steps        jsonb,
    approvals    jsonb,
    events       jsonb,
    flags        text[],
    message      text NOT NULL DEFAULT ''
);
CREATE INDEX runs_created_idx ON runs (created DESC, id DESC);
CREATE INDEX runs_group_idx ON runs (group_name, created DESC, id DESC);
CREATE INDEX runs_site_idx ON runs (site, created DESC, id DESC);
CREATE INDEX runs_kind_idx ON runs (kind, created DESC, id DESC);
CREATE INDEX runs_state_idx ON runs (state, created DESC, id DESC);
CREATE INDEX runs_workflow_idx ON runs (workflow_id);
CREATE INDEX runs_active_idx ON runs (group_name, created DESC)
    WHERE state NOT IN ('completed', 'rolled_back', 'failed', 'aborted');

-- +goose Down
DROP TABLE runs;
DROP TABLE replicas;
DROP TABLE group_backends;
DROP TABLE protection_groups;
DROP TABLE backend_replication_targets;
DROP TABLE backend_members;
DROP TABLE backends;
DROP TABLE sites;
