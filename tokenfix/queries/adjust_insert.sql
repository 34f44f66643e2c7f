-- Book one support adjustment (docs/commands.md, support adjustments): the ledger row that the
-- mapping's [adjust] section (or the default mapping) describes, as column = expression over
-- the command's own values, which the expressions see as `key`, `amount`, `reason`, `run_id`
-- and `idempotency_key`. RETURNING keeps the row exactly as the database stored it (defaults,
-- identity, triggers), for the audit trail and for the revert that deletes it.
INSERT INTO {table} AS l ({columns})
SELECT {values}
FROM (SELECT %(adjust_key)s::text::{key_type} AS key,
             %(adjust_amount)s::text::numeric AS amount,
             %(adjust_reason)s::text AS reason,
             %(adjust_run_id)s::uuid AS run_id,
             %(adjust_idempotency_key)s::text AS idempotency_key) AS adjust
RETURNING to_jsonb(l.*)
