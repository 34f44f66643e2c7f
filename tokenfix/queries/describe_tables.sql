-- Columns of each named table (or view): one row per column, or one row of NULLs for a
-- missing table. kind: pg_class.relkind (r table, p partitioned, v view, m matview, f foreign).
-- %(names)s holds quoted, optionally schema-qualified names, resolved through search_path.
SELECT n.position::int AS position,
       c.oid IS NOT NULL AS table_exists,
       c.relkind::text AS kind,
       a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type
FROM unnest(%(names)s::text[]) WITH ORDINALITY AS n (name, position)
LEFT JOIN pg_class AS c ON c.oid = to_regclass(n.name)
LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY n.position, a.attnum
