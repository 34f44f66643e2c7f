-- SECURITY DEFINER functions whose body writes the profiles table, and their search_path.
-- A definer function without a fixed search_path can be tricked into resolving names in a
-- schema the caller controls.
SELECT p.oid::regprocedure::text AS function,
       EXISTS (SELECT FROM unnest(coalesce(p.proconfig, '{}')) AS c (setting)
               WHERE c.setting LIKE 'search_path=%%') AS fixed_search_path,
       p.prosrc ~* %(updates_pattern)s AS updates_balance
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE p.prosecdef
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND p.prosrc ~* %(writes_pattern)s
ORDER BY 1
