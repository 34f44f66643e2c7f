-- Audit layout 1 (additive): the layout version itself, and the full content of every
-- profile row a run created or deleted (`full_row`, as the database stored it), so that a
-- revert deletes a created row only if the whole row is still exactly what the run wrote,
-- and re-creates a deleted one exactly (docs/safety.md "revert never destroys what the app made").
CREATE TABLE IF NOT EXISTS {schema}.layout (
    version      integer PRIMARY KEY,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    tool_version text NOT NULL
);

ALTER TABLE {schema}.changes ADD COLUMN IF NOT EXISTS full_row jsonb;
