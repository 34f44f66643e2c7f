-- Write one batch with compare-and-set: a profile row is updated only if it still holds the
-- values read under lock; a missing profile is inserted only if nobody created it meanwhile.
-- Each row written is recorded in the audit trail by the same statement (same transaction).
WITH planned AS (
    SELECT *
    FROM unnest(%(user_ids)s::uuid[], %(actions)s::text[],
                %(before_remaining)s::bigint[], %(before_used)s::bigint[],
                %(after_remaining)s::bigint[], %(after_used)s::bigint[])
        AS t (user_id, action, before_remaining, before_used, after_remaining, after_used)
), updated AS (
    UPDATE {profiles} AS p
    SET {remaining} = pl.after_remaining,
        {used} = pl.after_used,
        updated_at = now()
    FROM planned AS pl
    WHERE pl.action = 'update'
      AND p.user_id = pl.user_id
      AND p.{remaining} = pl.before_remaining
      AND p.{used} = pl.before_used
    RETURNING p.user_id
), inserted AS (
    INSERT INTO {profiles} AS p (user_id, {remaining}, {used})
    SELECT pl.user_id, pl.after_remaining, pl.after_used
    FROM planned AS pl
    WHERE pl.action = 'insert'
    ON CONFLICT (user_id) DO NOTHING
    RETURNING p.user_id
), written AS (
    SELECT user_id FROM updated
    UNION ALL
    SELECT user_id FROM inserted
)
INSERT INTO {changes} (run_id, user_id, action, before_remaining, before_used,
                       after_remaining, after_used, tool_version, host)
SELECT %(run_id)s, pl.user_id, pl.action, pl.before_remaining, pl.before_used,
       pl.after_remaining, pl.after_used, %(tool_version)s, %(host)s
FROM written AS w
JOIN planned AS pl ON pl.user_id = w.user_id
RETURNING user_id
