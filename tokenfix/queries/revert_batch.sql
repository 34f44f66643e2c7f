-- Put back what a run replaced, with compare-and-set, on profile rows already locked by this
-- transaction: a row is restored only if its balance still holds exactly what the run left;
-- a row the run created is deleted only if the whole row is still exactly what the run
-- wrote and no other row references it; a row the run deleted is re-created as it was.
-- Every row written is recorded in the audit trail by the same statement.
WITH planned AS (
    SELECT *
    FROM unnest(%(user_ids)s::uuid[], %(hows)s::text[],
                %(left_remaining)s::bigint[], %(left_used)s::bigint[],
                %(restore_remaining)s::bigint[], %(restore_used)s::bigint[],
                %(full_rows)s::jsonb[])
        AS t (user_id, how, left_remaining, left_used, restore_remaining, restore_used, full_row)
), created AS (  -- rows the run created: may they go?
    SELECT pl.user_id,
           pl.full_row IS NOT NULL AS verifiable,
           to_jsonb(p.*) = pl.full_row AS untouched,
           {referenced} AS referenced
    FROM planned AS pl
    JOIN {profiles} AS p ON p.user_id = pl.user_id
    WHERE pl.how = 'delete'
), restored AS (
    UPDATE {profiles} AS p
    SET {remaining} = pl.restore_remaining,
        {used} = pl.restore_used,
        updated_at = now()
    FROM planned AS pl
    WHERE pl.how = 'restore'
      AND p.user_id = pl.user_id
      AND p.{remaining} IS NOT DISTINCT FROM pl.left_remaining
      AND p.{used} IS NOT DISTINCT FROM pl.left_used
    RETURNING p.user_id, 'restore' AS action, p.{remaining}::bigint AS stored_remaining,
              p.{used}::bigint AS stored_used, NULL::jsonb AS full_row
), deleted AS (
    DELETE FROM {profiles} AS p
    USING created AS c
    WHERE p.user_id = c.user_id AND c.verifiable AND c.untouched AND NOT c.referenced
    RETURNING p.user_id, 'delete' AS action, NULL::bigint, NULL::bigint, to_jsonb(p.*)
), recreated AS (
    INSERT INTO {profiles} AS p ({insert_columns})
    SELECT {restore_columns}
    FROM planned AS pl
    CROSS JOIN LATERAL jsonb_populate_record(NULL::{profiles}, pl.full_row) AS r
    WHERE pl.how = 'recreate' AND pl.full_row IS NOT NULL
    ON CONFLICT (user_id) DO NOTHING
    RETURNING p.user_id, 'insert' AS action, p.{remaining}::bigint, p.{used}::bigint,
              to_jsonb(p.*)
), recreated_legacy AS (  -- deleted by a run of an older tokenfix: only the balance is known
    INSERT INTO {profiles} AS p (user_id, {remaining}, {used})
    SELECT pl.user_id, pl.restore_remaining, pl.restore_used
    FROM planned AS pl
    WHERE pl.how = 'recreate' AND pl.full_row IS NULL
    ON CONFLICT (user_id) DO NOTHING
    RETURNING p.user_id, 'insert' AS action, p.{remaining}::bigint, p.{used}::bigint,
              to_jsonb(p.*)
), written AS (
    SELECT * FROM restored
    UNION ALL SELECT * FROM deleted
    UNION ALL SELECT * FROM recreated
    UNION ALL SELECT * FROM recreated_legacy
), audited AS (
    INSERT INTO {changes} (run_id, user_id, action, before_remaining, before_used,
                           after_remaining, after_used, full_row, tool_version, host)
    SELECT %(run_id)s, w.user_id, w.action, pl.left_remaining, pl.left_used,
           w.stored_remaining, w.stored_used, w.full_row, %(tool_version)s, %(host)s
    FROM written AS w
    JOIN planned AS pl ON pl.user_id = w.user_id
)
SELECT pl.user_id, w.action, w.stored_remaining, w.stored_used,
       coalesce(c.verifiable, true) AS verifiable, coalesce(c.referenced, false) AS referenced
FROM planned AS pl
LEFT JOIN written AS w ON w.user_id = pl.user_id
LEFT JOIN created AS c ON c.user_id = pl.user_id
