-- The leading column of every valid index on one table.
SELECT i.indexrelid::regclass::text AS index, a.attname AS leading_column
FROM pg_index AS i
JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = to_regclass(%(table)s) AND i.indisvalid
