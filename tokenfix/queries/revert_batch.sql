-- Put back what a run replaced, with compare-and-set, on balance rows already locked by this
-- transaction: a row is restored only if its written columns still hold exactly what the run
-- left; a row the run created is deleted only if the whole row is still exactly what the run
-- wrote and no other row references it; a row the run deleted is re-created as it was.
-- Every row written is recorded in the audit trail by the same statement.
WITH planned AS (
    SELECT *
    FROM unnest(%(keys)s::text[]::{key_type}[], %(hows)s::text[], %(lefts)s::jsonb[],
                %(restores)s::jsonb[], %(full_rows)s::jsonb[])
        AS t (tf_key, tf_how, tf_left, tf_restore, tf_full_row)
), created AS (  -- rows the run created: may they go?
    SELECT pl.tf_key,
           pl.tf_full_row IS NOT NULL AS verifiable,
           to_jsonb(b.*) = pl.tf_full_row AS untouched,
           {referenced} AS referenced
    FROM planned AS pl
    JOIN {balance} AS b ON b.{key} = pl.tf_key
    WHERE pl.tf_how = 'delete'
), restored AS (
    UPDATE {balance} AS b
    SET {restore_assignments}
    FROM planned AS pl
    WHERE pl.tf_how = 'restore'
      AND b.{key} = pl.tf_key
      AND {written} = pl.tf_left
    RETURNING b.{key} AS tf_key, 'restore' AS action, {written} AS after, NULL::jsonb AS full_row
), deleted AS (
    DELETE FROM {balance} AS b
    USING created AS c
    WHERE b.{key} = c.tf_key AND c.verifiable AND c.untouched AND NOT c.referenced
    RETURNING b.{key}, 'delete' AS action, NULL::jsonb, to_jsonb(b.*)
), recreated AS (
    INSERT INTO {balance} AS b ({insert_columns})
    SELECT {restore_columns}
    FROM planned AS pl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::{balance}, pl.tf_full_row) AS r
    WHERE pl.tf_how = 'recreate' AND pl.tf_full_row IS NOT NULL
    ON CONFLICT ({key}) DO NOTHING
    RETURNING b.{key}, 'insert' AS action, {written}, to_jsonb(b.*)
), recreated_legacy AS (  -- deleted by a run of an older tokenfix: only the balance is known
    INSERT INTO {balance} AS b ({key}, {written_columns})
    SELECT pl.tf_key, {written_from_restore}
    FROM planned AS pl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::{balance}, pl.tf_restore) AS r
    WHERE pl.tf_how = 'recreate' AND pl.tf_full_row IS NULL
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
SELECT pl.tf_key::text, w.action, coalesce(c.verifiable, true), coalesce(c.referenced, false)
FROM planned AS pl
LEFT JOIN written AS w ON w.tf_key = pl.tf_key
LEFT JOIN created AS c ON c.tf_key = pl.tf_key
