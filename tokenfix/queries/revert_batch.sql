-- Put back what a run replaced, on balance rows already locked by this transaction, as
-- revert_plan.sql decides (the rules a dry run shows too): restore with compare-and-set,
-- delete a created row, re-create a deleted one as it was. Every row written is recorded in
-- the audit trail by the same statement. `undo_creates` is revert_batch_creates.sql when the
-- batch has created or deleted rows to undo, else just `written` from `restored`: PostgreSQL
-- checks the privileges of every table a statement names, so a revert of updates alone must
-- not name DELETE or INSERT (a role with UPDATE only can revert those).
WITH
\ir revert_plan.sql
, restored_rows AS (
    UPDATE {balance} AS balance
    SET {restore_assignments}
    FROM decided AS pl
    WHERE pl.tf_action = 'restore'
      AND balance.{key} = pl.tf_key
      AND {unchanged}  -- the compare-and-set (locked rows: it agrees with decided)
    RETURNING balance.*  -- whole: Citus runs no STABLE function over a shard's row (docs/citus.md)
), restored AS (
    SELECT balance.{key} AS tf_key, 'restore' AS action, {written} AS after, NULL::jsonb AS full_row
    FROM restored_rows AS balance
)
{undo_creates}
, audited AS (
    INSERT INTO {changes} (run_id, key, action, before, after, full_row, tool_version, host)
    SELECT %(run_id)s, w.tf_key::text, w.action, pl.tf_left, w.after, w.full_row,
           %(tool_version)s, %(host)s
    FROM written AS w
    JOIN planned AS pl ON pl.tf_key = w.tf_key
)
SELECT pl.tf_key::text, w.action, pl.tf_reason
FROM decided AS pl
LEFT JOIN written AS w ON w.tf_key = pl.tf_key
