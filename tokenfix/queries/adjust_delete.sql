-- Delete the ledger row a support adjustment booked, only if it is still exactly the row the
-- audit trail kept (found through the ledger's key index, then compared as a whole row); one
-- row even if an identical twin exists. No row back: it changed or is gone, so the revert
-- leaves that owner alone. The owner's key on the DELETE itself too: on Citus (docs/citus.md)
-- that routes the whole statement to the one shard holding the owner, where the row's ctid
-- means something.
DELETE FROM {table} AS l
WHERE {key} = %(key)s::text::{key_type} AND l.ctid = (
    SELECT t.ctid FROM {table} AS t
    WHERE {key} = %(key)s::text::{key_type} AND to_jsonb(t.*) = %(row)s::jsonb
    LIMIT 1
    FOR UPDATE
)
RETURNING 1
