-- examples/periods distributed with Citus by owner (docs/citus.md): the owner is the
-- entitlement (the balance key `id`), and its events live on the shard that holds it. Run once
-- on the coordinator, after `CREATE EXTENSION citus` and adding the workers:
--   psql "$TOKENFIX_DATABASE_URL" -v ON_ERROR_STOP=1 -f examples/periods/citus.sql
-- Existing rows are copied to the shards.

-- Citus refuses a unique constraint without the distribution column: the events' primary key
-- becomes (entitlement_id, id); id stays unique by its identity sequence.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_pkey;
ALTER TABLE events ADD PRIMARY KEY (entitlement_id, id);

-- The balance table on its key, the ledger on the column its `key` names, co-located (the
-- foreign key from events to customer_entitlements is on that column, so Citus keeps it).
SELECT create_distributed_table('customer_entitlements', 'id');
SELECT create_distributed_table('events', 'entitlement_id', colocate_with => 'customer_entitlements');
