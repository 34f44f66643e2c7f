-- The rows the tool wrote, for history lookups: one run's (%(run_id)s) and/or one owner's
-- across runs (%(key)s, the key as text); NULL leaves that filter off. Ordered by {order}.
-- reverted_by: the latest revert of the row's run that put this owner's row back (a revert
-- audits only the rows it put back).
-- here: whether the run wrote through the balance table and key in effect (%(table)s, quoted,
-- and %(balance_key)s; NULL when not asked); the balance_table: the name the run recorded.
-- Runs of audit layouts before 2 recorded neither: they wrote the default mapping's,
-- %(default_table)s and user_id.
SELECT c.run_id,
       r.command,
       coalesce(c.key, c.user_id::text) AS key,
       c.action,
       c.changed_at,
\ir audit_columns.sql
       r.reverts_run_id,
       (SELECT u.run_id
        FROM {changes} AS u
        JOIN {runs} AS v ON v.run_id = u.run_id
        WHERE v.reverts_run_id = c.run_id
          AND (u.key = coalesce(c.key, c.user_id::text)
               OR (u.key IS NULL AND u.user_id::text = coalesce(c.key, c.user_id::text)))
        ORDER BY u.id DESC
        LIMIT 1) AS reverted_by,
       CASE WHEN %(table)s::text IS NOT NULL THEN
           coalesce(r.balance_key, 'user_id') = %(balance_key)s
           AND to_regclass(array_to_string(ARRAY(
                   SELECT quote_ident(t.part)
                   FROM unnest(string_to_array(coalesce(r.balance_table, %(default_table)s), '.'))
                       WITH ORDINALITY AS t (part, n)
                   ORDER BY t.n), '.')) = to_regclass(%(table)s::text)
       END AS here,
       coalesce(r.balance_table, %(default_table)s) AS balance_table
FROM {changes} AS c
JOIN {runs} AS r ON r.run_id = c.run_id
WHERE (%(run_id)s::uuid IS NULL OR c.run_id = %(run_id)s)
  AND (%(key)s::text IS NULL
       OR c.key = %(key)s
       OR (c.key IS NULL AND c.user_id::text = %(key)s))
ORDER BY {order}
LIMIT %(limit)s
