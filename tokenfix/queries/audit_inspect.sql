-- What the audit schema holds: whether it exists, which of tokenfix's tables it has (a
-- `layout` table names the layout version; the tables without it are layout 0, the first
-- release's), and the first few objects in it that are not tokenfix's own (an app's table,
-- a view, a function: the schema is then not ours to write in).
WITH schema AS (
    SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = %(schema)s
), ours (name, signature) AS (
    VALUES ('runs', 'reverts_run_id'), ('changes', 'before_remaining'),
           ('lease', 'holder'), ('layout', 'version')
), own_tables AS (
    SELECT c.oid, c.relname
    FROM pg_class AS c
    JOIN ours ON ours.name = c.relname
    WHERE c.relnamespace = (SELECT oid FROM schema) AND c.relkind = 'r'
      AND EXISTS (SELECT FROM pg_attribute AS a
                  WHERE a.attrelid = c.oid AND a.attname = ours.signature AND NOT a.attisdropped)
), foreign_objects AS (
    SELECT format('%%s %%s', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
                                          WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                          WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
                                          WHEN 'i' THEN 'index'
                                          ELSE 'relation' END, c.relname) AS object
    FROM pg_class AS c
    WHERE c.relnamespace = (SELECT oid FROM schema)
      AND c.oid NOT IN (SELECT oid FROM own_tables)
      AND NOT EXISTS (  -- our tables' indexes (primary keys included)
          SELECT FROM pg_index AS i
          WHERE i.indexrelid = c.oid AND i.indrelid IN (SELECT oid FROM own_tables))
      AND NOT EXISTS (  -- our tables' identity sequences
          SELECT FROM pg_depend AS d
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_class'::regclass
            AND d.refobjid IN (SELECT oid FROM own_tables))
    UNION ALL
    SELECT format('function %%s', p.oid::regprocedure)
    FROM pg_proc AS p WHERE p.pronamespace = (SELECT oid FROM schema)
    UNION ALL
    SELECT format('type %%s', t.typname)
    FROM pg_type AS t
    WHERE t.typnamespace = (SELECT oid FROM schema) AND t.typrelid = 0 AND t.typcategory <> 'A'
)
SELECT EXISTS (SELECT FROM schema) AS schema_exists,
       ARRAY(SELECT relname::text FROM own_tables ORDER BY relname) AS own_tables,
       ARRAY(SELECT object FROM foreign_objects ORDER BY object LIMIT 5) AS foreign_objects
