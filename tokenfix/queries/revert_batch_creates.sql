-- For revert_batch.sql: undo what a run created (delete the row) or deleted (re-create it),
-- and `written`, every row the batch wrote (from the rows returned whole, as in write_batch.sql).
, deleted AS (
    DELETE FROM {balance} AS balance
    USING decided AS pl
    WHERE pl.tf_action = 'delete' AND balance.{key} = pl.tf_key
    RETURNING balance.*
), recreated AS (
    INSERT INTO {balance} AS balance ({insert_columns})
    SELECT {restore_columns}
    FROM decided AS pl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::{balance}, pl.tf_full_row) AS r
    WHERE pl.tf_action = 'insert' AND pl.tf_full_row IS NOT NULL
    ON CONFLICT ({key}) DO NOTHING
    RETURNING balance.*
), recreated_legacy AS (  -- deleted by a run of an older tokenfix: only the balance is known
    INSERT INTO {balance} AS balance ({key}, {written_columns})
    SELECT pl.tf_key, {written_from_restore}
    FROM decided AS pl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::{balance}, pl.tf_restore) AS r
    WHERE pl.tf_action = 'insert' AND pl.tf_full_row IS NULL
    ON CONFLICT ({key}) DO NOTHING
    RETURNING balance.*
), written AS (
    SELECT * FROM restored
    UNION ALL
    SELECT balance.{key}, 'delete', NULL::jsonb, to_jsonb(balance.*) FROM deleted AS balance
    UNION ALL
    SELECT balance.{key}, 'insert', {written}, to_jsonb(balance.*) FROM recreated AS balance
    UNION ALL
    SELECT balance.{key}, 'insert', {written}, to_jsonb(balance.*)
    FROM recreated_legacy AS balance
)
