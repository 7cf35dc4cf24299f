-- +goose Up
-- What some run kinds add to their record: an evacuation's child runs, a
-- drill's checks, the resources a run touched, writes a resync discarded.
ALTER TABLE runs ADD COLUMN details jsonb;

-- +goose Down
ALTER TABLE runs DROP COLUMN details;
