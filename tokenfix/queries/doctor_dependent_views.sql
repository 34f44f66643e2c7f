-- Views over the checked tables, through any chain of views (a public view over a private
-- one over the table): which table (by position in %(relations)s), their owner, whether every
-- view of the chain runs with the caller's rights (security_invoker: otherwise the chain
-- reaches the table with some owner's rights), the chain itself, their columns, and the
-- writes they accept, rules and INSTEAD OF triggers included: pg_relation_is_updatable's
-- bits 4 (UPDATE), 8 (INSERT), 16 (DELETE).
WITH RECURSIVE chain (view, base, invoker, path) AS (
    SELECT v.oid, base.position::int,
           coalesce(lower(v.reloptions::text)::text[] && ARRAY['security_invoker=1',
                    'security_invoker=true', 'security_invoker=yes', 'security_invoker=on'],
                    false),
           ARRAY[v.oid]
    FROM unnest(%(relations)s::text[]) WITH ORDINALITY AS base (relation, position)
    JOIN pg_depend AS d
      ON d.refobjid = to_regclass(base.relation)
     AND d.refclassid = 'pg_class'::regclass
     AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite AS r ON r.oid = d.objid
    JOIN pg_class AS v ON v.oid = r.ev_class AND v.relkind = 'v' AND v.oid <> d.refobjid
    UNION ALL
    SELECT v.oid, c.base,
           c.invoker AND coalesce(lower(v.reloptions::text)::text[] && ARRAY[
               'security_invoker=1', 'security_invoker=true', 'security_invoker=yes',
               'security_invoker=on'], false),
           c.path || v.oid
    FROM chain AS c
    JOIN pg_depend AS d
      ON d.refobjid = c.view
     AND d.refclassid = 'pg_class'::regclass
     AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite AS r ON r.oid = d.objid
    JOIN pg_class AS v ON v.oid = r.ev_class AND v.relkind = 'v' AND v.oid <> d.refobjid
    WHERE v.oid <> ALL (c.path) AND cardinality(c.path) < 16
)
SELECT DISTINCT ON (n.nspname, v.relname, c.base)
       n.nspname::text AS schema,
       v.relname::text AS name,
       c.base AS base,
       pg_get_userbyid(v.relowner)::text AS owner,
       c.invoker AS security_invoker,
       pg_relation_is_updatable(v.oid, true) AS events,
       ARRAY(SELECT a.attname::text FROM pg_attribute AS a
             WHERE a.attrelid = v.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum) AS columns,
       ARRAY(SELECT pn.nspname::text
             FROM unnest(c.path[1:cardinality(c.path) - 1]) WITH ORDINALITY AS x (oid, i)
             JOIN pg_class AS p ON p.oid = x.oid
             JOIN pg_namespace AS pn ON pn.oid = p.relnamespace
             ORDER BY x.i DESC) AS through_schemas,
       ARRAY(SELECT p.relname::text
             FROM unnest(c.path[1:cardinality(c.path) - 1]) WITH ORDINALITY AS x (oid, i)
             JOIN pg_class AS p ON p.oid = x.oid
             ORDER BY x.i DESC) AS through_names
FROM chain AS c
JOIN pg_class AS v ON v.oid = c.view
JOIN pg_namespace AS n ON n.oid = v.relnamespace
ORDER BY n.nspname, v.relname, c.base, c.invoker, cardinality(c.path)
