-- Ledger rows that count for nothing because they are malformed (docs/mapping.md "invalid"), and
-- owners with ledger rows but no balance row. One pass over each source, one probe per owner.
WITH per_owner AS (
    SELECT r.key, count(*) FILTER (WHERE r.invalid) AS invalid_rows
    FROM ({rows}) AS r
    GROUP BY r.key
)
SELECT coalesce(sum(o.invalid_rows), 0)::bigint AS invalid_rows,
       count(*) FILTER (WHERE NOT EXISTS (
           SELECT FROM {balance} AS balance WHERE balance.{key} = o.key AND {where})) AS without_profile
FROM per_owner AS o
