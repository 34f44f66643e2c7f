-- Put back what a run replaced, on balance rows already locked by this transaction, as
-- revert_plan.sql decides (the rules a dry run shows too): restore with compare-and-set,
-- delete a created row, re-create a deleted one as it was. Every row written is recorded in
-- the audit trail by the same statement.
WITH
\ir revert_plan.sql
, restored AS (
    UPDATE {balance} AS b
    SET {restore_assignments}
    FROM decided AS pl
    WHERE pl.tf_action = 'restore'
      AND b.{key} = pl.tf_key
      AND {written} = pl.tf_left  -- the compare-and-set (locked rows: it agrees with decided)
    RETURNING b.{key} AS tf_key, 'restore' AS action, {written} AS after, NULL::jsonb AS full_row
), deleted AS (
    DELETE FROM {balance} AS b
    USING decided AS pl
    WHERE pl.tf_action = 'delete' AND b.{key} = pl.tf_key
    RETURNING b.{key}, 'delete' AS action, NULL::jsonb, to_jsonb(b.*)
), recreated AS (
    INSERT INTO {balance} AS b ({insert_columns})
    SELECT {restore_columns}
    FROM decided AS pl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::{balance}, pl.tf_full_row) AS r
    WHERE pl.tf_action = 'insert' AND pl.tf_full_row IS NOT NULL
    ON CONFLICT ({key}) DO NOTHING
    RETURNING b.{key}, 'insert' AS action, {written}, to_jsonb(b.*)
), recreated_legacy AS (  -- deleted by a run of an older tokenfix: only the balance is known
    INSERT INTO {balance} AS b ({key}, {written_columns})
    SELECT pl.tf_key, {written_from_restore}
    FROM decided AS pl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::{balance}, pl.tf_restore) AS r
    WHERE pl.tf_action = 'insert' AND pl.tf_full_row IS NULL
    ON CONFLICT ({key}) DO NOTHING
    RETURNING b.{key}, 'insert' AS action, {written}, to_jsonb(b.*)
), written AS (
    SELECT * FROM restored
    UNION ALL SELECT * FROM deleted
    UNION ALL SELECT * FROM recreated
    UNION ALL SELECT * FROM recreated_legacy
), audited AS (
    INSERT INTO {changes} (run_id, key, action, before, after, full_row, tool_version, host)
    SELECT %(run_id)s, w.tf_key::text, w.action, pl.tf_left, w.after, w.full_row,
           %(tool_version)s, %(host)s
    FROM written AS w
    JOIN planned AS pl ON pl.tf_key = w.tf_key
)
SELECT pl.tf_key::text, w.action, pl.tf_reason
FROM decided AS pl
LEFT JOIN written AS w ON w.tf_key = pl.tf_key
