-- revert --dry-run of a support adjustment: is the booked ledger row still exactly as the
-- audit trail kept it? (read only; adjust_delete.sql is the revert's own test)
SELECT EXISTS (
    SELECT FROM {table} AS t
    WHERE {key} = %(key)s::text::{key_type} AND to_jsonb(t.*) = %(row)s::jsonb
)
