-- Audit layout 2 (additive): any shape of balance (docs/mapping.md). The owner's key as text, and
-- the written columns before and after as jsonb (whatever they are called and whatever their
-- types); per run, the balance table, its key and a hash of the mapping's balance side, so a
-- revert under another mapping is refused. Rows of earlier layouts keep their user_id and
-- *_remaining / *_used columns, read as the default mapping's columns.
ALTER TABLE {schema}.changes ADD COLUMN IF NOT EXISTS key text;
ALTER TABLE {schema}.changes ADD COLUMN IF NOT EXISTS before jsonb;
ALTER TABLE {schema}.changes ADD COLUMN IF NOT EXISTS after jsonb;
ALTER TABLE {schema}.changes ALTER COLUMN user_id DROP NOT NULL;
CREATE INDEX IF NOT EXISTS changes_key_idx ON {schema}.changes (key);

ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS balance_table text;
ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS balance_key text;
ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS mapping_hash text;
