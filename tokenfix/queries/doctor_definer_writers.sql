-- SECURITY DEFINER functions whose body writes one of the checked tables: which tables (by
-- position in %(writes)s), whether it updates a balance column, its search_path, and who may
-- call it (EXECUTE, and USAGE on its schema) among PUBLIC, anon and authenticated. Trigger
-- functions are left out: nobody can call them directly.
SELECT p.oid::regprocedure::text AS function,
       pg_get_userbyid(p.proowner)::text AS owner,
       EXISTS (SELECT FROM unnest(coalesce(p.proconfig, '{}')) AS c (setting)
               WHERE c.setting LIKE 'search_path=%%') AS fixed_search_path,
       ARRAY(SELECT w.position::int
             FROM unnest(%(writes)s::text[]) WITH ORDINALITY AS w (pattern, position)
             WHERE p.prosrc ~* w.pattern
             ORDER BY w.position) AS writes,
       p.prosrc ~* %(updates_balance)s AS updates_balance,
       ARRAY(SELECT who.name
             FROM unnest(%(roles)s::text[]) WITH ORDINALITY AS who (name, position)
             WHERE has_function_privilege(who.name, p.oid, 'EXECUTE')
               AND has_schema_privilege(who.name, p.pronamespace, 'USAGE')
             ORDER BY who.position) AS callers
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE p.prosecdef
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
  AND p.prosrc ~* %(writes_any)s
ORDER BY 1
