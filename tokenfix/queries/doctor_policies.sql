-- Row-level security policies on one table: command, roles, permissive or not, expressions.
SELECT p.polname AS name,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
       p.polpermissive AS permissive,
       CASE WHEN p.polroles = '{0}' THEN ARRAY['public']::text[]
            ELSE ARRAY(SELECT r.rolname::text FROM pg_roles AS r WHERE r.oid = ANY(p.polroles)
                       ORDER BY r.rolname) END AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using_expression,
       pg_get_expr(p.polwithcheck, p.polrelid) AS check_expression
FROM pg_policy AS p
WHERE p.polrelid = to_regclass(%(table)s)
ORDER BY p.polname
