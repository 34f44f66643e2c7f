-- The rows a run wrote (all of them, or one owner's: %(key)s, NULL for all), in key order:
-- what revert puts back, and the full row it created or deleted.
SELECT coalesce(c.key, c.user_id::text) AS key,
       c.action,
\ir audit_columns.sql
       c.full_row
FROM {changes} AS c
WHERE c.run_id = %(run_id)s
  AND (%(key)s::text IS NULL OR coalesce(c.key, c.user_id::text) = %(key)s)
ORDER BY 1, c.id
