-- Row-level security policies on one table, and the functions they call whose body reads a
-- claim users edit themselves (Supabase's user_metadata): pg_depend records every function
-- a policy expression calls.
SELECT p.polname::text AS name,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
       p.polpermissive AS permissive,
       CASE WHEN p.polroles = '{0}' THEN ARRAY['public']::text[]
            ELSE ARRAY(SELECT r.rolname::text FROM pg_roles AS r WHERE r.oid = ANY(p.polroles)
                       ORDER BY r.rolname) END AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using_expression,
       pg_get_expr(p.polwithcheck, p.polrelid) AS check_expression,
       ARRAY(SELECT DISTINCT f.oid::regprocedure::text
             FROM pg_depend AS d
             JOIN pg_proc AS f ON f.oid = d.refobjid
             WHERE d.classid = 'pg_policy'::regclass AND d.objid = p.oid
               AND d.refclassid = 'pg_proc'::regclass
               AND f.prosrc ~* %(user_editable)s) AS trusting_functions
FROM pg_policy AS p
WHERE p.polrelid = to_regclass(%(relation)s)
ORDER BY p.polname
