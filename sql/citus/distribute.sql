-- Distribute the seed's tables (sql/schema.sql) with Citus, by owner: what tokenfix needs on a
-- cluster (docs/citus.md). Run once on the coordinator, in the database the app uses, after
-- `CREATE EXTENSION citus` and the workers are added:
--   psql "$TOKENFIX_DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/citus/distribute.sql
-- Existing rows are copied to the shards. Under a mapping file, distribute each ledger on the
-- column its `key` names, co-located with the balance table, the same way.

-- Citus refuses a unique constraint that does not include the distribution column: the
-- ledger's primary key becomes (user_id, id). id stays unique by its identity sequence.
ALTER TABLE token_usage DROP CONSTRAINT IF EXISTS token_usage_pkey;
ALTER TABLE token_usage ADD PRIMARY KEY (user_id, id);

-- The balance table and the ledger on the owner key, co-located: each owner's balance row
-- lives on the shard holding that owner's ledger rows.
SELECT create_distributed_table('user_profiles', 'user_id');
SELECT create_distributed_table('token_usage', 'user_id', colocate_with => 'user_profiles');

-- Prices: a reference table, a copy on every node, so they join locally on each shard.
SELECT create_reference_table('ai_action_token_overrides');
