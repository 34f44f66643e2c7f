-- Views over the checked tables (one level deep): which table (by position in
-- %(relations)s), their owner, whether they run with the caller's rights (security_invoker),
-- their columns, and the writes they accept, rules and INSTEAD OF triggers included:
-- pg_relation_is_updatable's bits 4 (UPDATE), 8 (INSERT), 16 (DELETE).
SELECT DISTINCT
       n.nspname::text AS schema,
       v.relname::text AS name,
       base.position::int AS base,
       pg_get_userbyid(v.relowner)::text AS owner,
       coalesce(lower(v.reloptions::text)::text[] && ARRAY['security_invoker=1',
                'security_invoker=true', 'security_invoker=yes', 'security_invoker=on'],
                false) AS security_invoker,
       pg_relation_is_updatable(v.oid, true) AS events,
       ARRAY(SELECT a.attname::text FROM pg_attribute AS a
             WHERE a.attrelid = v.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum) AS columns
FROM unnest(%(relations)s::text[]) WITH ORDINALITY AS base (relation, position)
JOIN pg_depend AS d
  ON d.refobjid = to_regclass(base.relation)
 AND d.refclassid = 'pg_class'::regclass
 AND d.classid = 'pg_rewrite'::regclass
JOIN pg_rewrite AS r ON r.oid = d.objid
JOIN pg_class AS v ON v.oid = r.ev_class AND v.relkind = 'v' AND v.oid <> d.refobjid
JOIN pg_namespace AS n ON n.oid = v.relnamespace
ORDER BY 1, 2, 3
