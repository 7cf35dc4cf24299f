-- +goose Up
-- API tokens. A token's secret is never stored: hash is the SHA-256 of it
-- (secrets are 256 random bits, so no salt or slow hash is needed to keep
-- them from being guessed back). Names are unique among unrevoked tokens,
-- so the name a run records as started_by means one token at a time.
CREATE TABLE auth_tokens (
    id           text PRIMARY KEY,
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    project      text NOT NULL DEFAULT '',
    created_by   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE UNIQUE INDEX auth_tokens_active_name_idx ON auth_tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX auth_tokens_created_idx ON auth_tokens (created_at DESC, id DESC);

-- The audit log: one row per mutating API request. A row is appended before
-- the request acts (status 0 until it has answered), so nothing changes
-- that the log does not show. It keeps no request body and no secret.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    method      text NOT NULL,
    path        text NOT NULL,
    status      integer NOT NULL DEFAULT 0,
    token_id    text NOT NULL DEFAULT '',
    token_name  text NOT NULL DEFAULT '',
    role        text NOT NULL DEFAULT '',
    project     text NOT NULL DEFAULT '',
    run_id      text NOT NULL DEFAULT '',
    remote_addr text NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_token_idx ON audit_log (token_id, id DESC);

-- Who started a run (the token's name, set by the API from the request's
-- authentication) and the project of its group when it started, which is
-- what project-scoped tokens see runs by.
ALTER TABLE runs ADD COLUMN started_by text NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN project text NOT NULL DEFAULT '';
UPDATE runs SET project = g.project FROM protection_groups g WHERE g.name = runs.group_name;
CREATE INDEX runs_project_idx ON runs (project, created DESC, id DESC);

-- +goose Down
DROP INDEX runs_project_idx;
ALTER TABLE runs DROP COLUMN project;
ALTER TABLE runs DROP COLUMN started_by;
DROP TABLE audit_log;
DROP TABLE auth_tokens;
