-- Whether the Citus extension is installed in this database (its catalog exists).
SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
   AND EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')
