-- Every valid index on one table: its leading column and all the columns it holds (key and
-- INCLUDE), and the table's estimated row count.
SELECT i.indexrelid::regclass::text AS index,
       a.attname AS leading_column,
       ARRAY(SELECT c.attname::text FROM pg_attribute AS c
             WHERE c.attrelid = i.indrelid AND c.attnum = ANY(i.indkey)) AS columns,
       t.reltuples::bigint AS estimated_rows
FROM pg_index AS i
JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
JOIN pg_class AS t ON t.oid = i.indrelid
WHERE i.indrelid = to_regclass(%(table)s) AND i.indisvalid
