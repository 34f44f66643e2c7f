-- How Citus holds a table (docs/citus.md): its distribution method ('h' hash-distributed, 'n'
-- not distributed), its replication model ('t' for a reference table), its distribution column
-- and its co-location group; all NULL for a plain table Citus does not know. No row: no such
-- table. Only run once pg_dist_partition is known to exist (citus_present.sql).
SELECT p.partmethod::text, p.repmodel::text,
       CASE WHEN p.partkey IS NOT NULL
            THEN pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END,
       p.colocationid
FROM (SELECT to_regclass(%(table)s) AS rel) AS t
LEFT JOIN pg_catalog.pg_dist_partition AS p ON p.logicalrelid = t.rel
WHERE t.rel IS NOT NULL
