-- examples/lots distributed with Citus by owner (docs/citus.md): the account, its grants (the
-- lots) and its usage on one shard, so each shard streams its own accounts' lots and rows.
-- Run once on the coordinator, after `CREATE EXTENSION citus` and adding the workers:
--   psql "$TOKENFIX_DATABASE_URL" -v ON_ERROR_STOP=1 -f examples/lots/citus.sql
-- Existing rows are copied to the shards.

-- Citus refuses a unique constraint without the distribution column: the primary keys become
-- (account_id, id); id stays unique by its identity sequence.
ALTER TABLE credit_grants DROP CONSTRAINT IF EXISTS credit_grants_pkey;
ALTER TABLE credit_grants ADD PRIMARY KEY (account_id, id);
ALTER TABLE usage_events DROP CONSTRAINT IF EXISTS usage_events_pkey;
ALTER TABLE usage_events ADD PRIMARY KEY (account_id, id);

-- The balance table on its key; the [[lots]] table and the ledger on the column their `key`
-- names, co-located with it.
SELECT create_distributed_table('accounts', 'id');
SELECT create_distributed_table('credit_grants', 'account_id', colocate_with => 'accounts');
SELECT create_distributed_table('usage_events', 'account_id', colocate_with => 'accounts');
