-- The rows a run wrote, in key order: the written columns as it left them (after) and as it
-- found them (before), and the full row it created or deleted; NULL means "no row" (a created
-- or a deleted balance row). Rows of audit layouts before 2 hold the two default columns,
-- named here %(remaining)s and %(used)s.
SELECT coalesce(c.key, c.user_id::text) AS key,
       c.action,
       CASE WHEN c.key IS NOT NULL THEN c.before
            WHEN c.action = 'insert' THEN NULL
            ELSE jsonb_build_object(%(remaining)s::text, c.before_remaining,
                                    %(used)s::text, c.before_used) END AS before,
       CASE WHEN c.key IS NOT NULL THEN c.after
            WHEN c.action = 'delete' THEN NULL
            ELSE jsonb_build_object(%(remaining)s::text, c.after_remaining,
                                    %(used)s::text, c.after_used) END AS after,
       c.full_row
FROM {changes} AS c
WHERE c.run_id = %(run_id)s
ORDER BY 1, c.id
