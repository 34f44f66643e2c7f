-- Snapshots: the unique index that names one balance row by its row_id, alone or beside the
-- owner key (every write names both; on Citus a unique index must hold the distribution
-- column, the owner key: docs/citus.md). Its key columns, the fewest first; no row: none.
SELECT k.names
FROM pg_index AS i
CROSS JOIN LATERAL (
    SELECT array_agg(a.attname::text ORDER BY n.n) AS names
    FROM generate_series(0, i.indnkeyatts - 1) AS n (n)
    LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[n.n]
) AS k
WHERE i.indrelid = to_regclass(%(table)s) AND i.indisunique AND i.indpred IS NULL
  AND %(row_id)s = ANY(k.names) AND k.names <@ ARRAY[%(row_id)s, %(key)s]::text[]
ORDER BY i.indnkeyatts
LIMIT 1
