-- Put back what a run replaced, with compare-and-set: a row is restored (or a created row
-- deleted, or a deleted row re-created) only if it still holds exactly what the run left.
-- Every row written is recorded in the audit trail by the same statement.
WITH planned AS (
    SELECT *
    FROM unnest(%(user_ids)s::uuid[],
                %(left_remaining)s::bigint[], %(left_used)s::bigint[],
                %(restore_remaining)s::bigint[], %(restore_used)s::bigint[])
        AS t (user_id, left_remaining, left_used, restore_remaining, restore_used)
), restored AS (
    UPDATE {profiles} AS p
    SET {remaining} = pl.restore_remaining,
        {used} = pl.restore_used,
        updated_at = now()
    FROM planned AS pl
    WHERE pl.left_remaining IS NOT NULL AND pl.restore_remaining IS NOT NULL
      AND p.user_id = pl.user_id
      AND p.{remaining} = pl.left_remaining
      AND p.{used} = pl.left_used
    RETURNING p.user_id, 'restore' AS action
), deleted AS (
    DELETE FROM {profiles} AS p
    USING planned AS pl
    WHERE pl.left_remaining IS NOT NULL AND pl.restore_remaining IS NULL
      AND p.user_id = pl.user_id
      AND p.{remaining} = pl.left_remaining
      AND p.{used} = pl.left_used
    RETURNING p.user_id, 'delete' AS action
), recreated AS (
    INSERT INTO {profiles} AS p (user_id, {remaining}, {used})
    SELECT pl.user_id, pl.restore_remaining, pl.restore_used
    FROM planned AS pl
    WHERE pl.left_remaining IS NULL AND pl.restore_remaining IS NOT NULL
    ON CONFLICT (user_id) DO NOTHING
    RETURNING p.user_id, 'insert' AS action
), written AS (
    SELECT * FROM restored
    UNION ALL SELECT * FROM deleted
    UNION ALL SELECT * FROM recreated
)
INSERT INTO {changes} (run_id, user_id, action, before_remaining, before_used,
                       after_remaining, after_used, tool_version, host)
SELECT %(run_id)s, w.user_id, w.action, pl.left_remaining, pl.left_used,
       pl.restore_remaining, pl.restore_used, %(tool_version)s, %(host)s
FROM written AS w
JOIN planned AS pl ON pl.user_id = w.user_id
RETURNING user_id, action
