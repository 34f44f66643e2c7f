-- Write one batch with compare-and-set: a profile row is updated only if it still holds the
-- values read under lock (NULL included); a missing profile is inserted only if nobody
-- created it meanwhile. RETURNING reads back what the database stored (a trigger may have
-- changed it), and that is what the audit trail records, in the same statement (same
-- transaction). A write that left the balance as it was is no update: no audit row.
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
      AND p.{remaining} IS NOT DISTINCT FROM pl.before_remaining
      AND p.{used} IS NOT DISTINCT FROM pl.before_used
    RETURNING p.user_id, p.{remaining}::bigint AS stored_remaining, p.{used}::bigint AS stored_used,
              NULL::jsonb AS full_row
), inserted AS (
    INSERT INTO {profiles} AS p (user_id, {remaining}, {used})
    SELECT pl.user_id, pl.after_remaining, pl.after_used
    FROM planned AS pl
    WHERE pl.action = 'insert'
    ON CONFLICT (user_id) DO NOTHING
    RETURNING p.user_id, p.{remaining}::bigint, p.{used}::bigint, to_jsonb(p.*)
), written AS (
    SELECT * FROM updated
    UNION ALL
    SELECT * FROM inserted
), audited AS (
    INSERT INTO {changes} (run_id, user_id, action, before_remaining, before_used,
                           after_remaining, after_used, full_row, tool_version, host)
    SELECT %(run_id)s, pl.user_id, pl.action, pl.before_remaining, pl.before_used,
           w.stored_remaining, w.stored_used, w.full_row, %(tool_version)s, %(host)s
    FROM written AS w
    JOIN planned AS pl ON pl.user_id = w.user_id
    WHERE pl.action = 'insert'
       OR (w.stored_remaining, w.stored_used)
          IS DISTINCT FROM (pl.before_remaining, pl.before_used)
)
SELECT user_id, stored_remaining, stored_used
FROM written
