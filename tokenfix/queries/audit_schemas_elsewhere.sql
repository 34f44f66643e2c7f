-- The other tokenfix audit schemas of this database (a `lease` and a `runs` table side by
-- side), whose lease this role may read: where another run may be writing the same table.
SELECT n.nspname
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relname = 'lease'
  AND c.relkind IN ('r', 'p')
  AND n.nspname <> %(own)s
  AND EXISTS (
      SELECT 1 FROM pg_catalog.pg_class AS r
      WHERE r.relnamespace = n.oid AND r.relname = 'runs' AND r.relkind IN ('r', 'p')
  )
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname
