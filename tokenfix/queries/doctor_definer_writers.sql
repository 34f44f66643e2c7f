-- SECURITY DEFINER functions that write one of the checked tables, themselves or through the
-- functions they call, at any depth: a call is a pg_depend edge (SQL-standard bodies), the
-- callee's name followed by "(" in the caller's body, or a write to a table whose trigger
-- function is the callee. For each: which tables (by position in %(writes)s), whether a
-- balance column is updated, the chain of calls that reaches the write, its search_path, and
-- who may call it (EXECUTE, and USAGE on its schema) among PUBLIC, anon and authenticated.
-- Trigger functions are not reported themselves: nobody can call them directly.
WITH RECURSIVE fns AS (
    SELECT p.oid, p.proname, p.prosrc, p.prosecdef, p.prorettype,
           regexp_replace(p.proname, '([.^$*+?()\[\]{}|\\])', '\\\1', 'g') AS pattern
    FROM pg_proc AS p
    JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND p.prolang NOT IN (SELECT l.oid FROM pg_language AS l WHERE l.lanname IN ('c', 'internal'))
), triggered AS (
    -- Tables whose triggers run a function: a write to the table calls it.
    SELECT t.tgfoid AS function, c.relname AS table_name
    FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
    WHERE NOT t.tgisinternal
), writers (oid, base, path) AS (
    SELECT f.oid, f.oid, ARRAY[f.oid]
    FROM fns AS f
    WHERE f.prosrc ~* %(writes_any)s
    UNION ALL
    SELECT caller.oid, w.base, w.path || caller.oid
    FROM writers AS w
    JOIN fns AS callee ON callee.oid = w.oid
    JOIN fns AS caller
      ON caller.oid <> ALL (w.path)
     AND (caller.prosrc ~* ('\m' || callee.pattern || '\M\s*\(')
          OR EXISTS (SELECT FROM pg_depend AS d
                     WHERE d.classid = 'pg_proc'::regclass AND d.objid = caller.oid
                       AND d.refclassid = 'pg_proc'::regclass AND d.refobjid = callee.oid)
          OR EXISTS (SELECT FROM triggered AS t
                     WHERE t.function = callee.oid
                       AND caller.prosrc ~* ('(update|insert\s+into|delete\s+from|merge\s+into)\s+'
                                             || '("?[A-Za-z_][A-Za-z0-9_$]*"?\s*\.\s*)?"?'
                                             || regexp_replace(t.table_name,
                                                               '([.^$*+?()\[\]{}|\\])', '\\\1',
                                                               'g')
                                             || '"?\M')))
    WHERE cardinality(w.path) < 8
), reached AS (
    SELECT DISTINCT ON (w.oid, w.base) w.oid, w.base, w.path
    FROM writers AS w
    ORDER BY w.oid, w.base, cardinality(w.path)
)
SELECT p.oid::regprocedure::text AS function,
       pg_get_userbyid(p.proowner)::text AS owner,
       EXISTS (SELECT FROM unnest(coalesce(p.proconfig, '{}')) AS c (setting)
               WHERE c.setting LIKE 'search_path=%%') AS fixed_search_path,
       ARRAY(SELECT DISTINCT w.position::int
             FROM reached AS r
             JOIN pg_proc AS b ON b.oid = r.base
             CROSS JOIN unnest(%(writes)s::text[]) WITH ORDINALITY AS w (pattern, position)
             WHERE r.oid = p.oid AND b.prosrc ~* w.pattern
             ORDER BY 1) AS writes,
       EXISTS (SELECT FROM reached AS r JOIN pg_proc AS b ON b.oid = r.base
               WHERE r.oid = p.oid AND b.prosrc ~* %(updates_balance)s) AS updates_balance,
       coalesce((SELECT ARRAY(SELECT x.oid::regprocedure::text
                              FROM unnest(r.path) WITH ORDINALITY AS x (oid, i)
                              WHERE x.i < cardinality(r.path)
                              ORDER BY x.i DESC)
                 FROM reached AS r WHERE r.oid = p.oid
                 ORDER BY cardinality(r.path) LIMIT 1), '{}') AS calls,
       ARRAY(SELECT who.name
             FROM unnest(%(roles)s::text[]) WITH ORDINALITY AS who (name, position)
             WHERE has_function_privilege(who.name, p.oid, 'EXECUTE')
               AND has_schema_privilege(who.name, p.pronamespace, 'USAGE')
             ORDER BY who.position) AS callers
FROM pg_proc AS p
WHERE p.prosecdef
  AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
  AND p.oid IN (SELECT r.oid FROM reached AS r)
ORDER BY 1
