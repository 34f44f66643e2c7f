-- Ledger rows that count for nothing because they are malformed (docs/mapping.md "invalid"), and
-- owners with ledger rows but no balance row. One pass over each source, one probe per owner.
-- The probe is an outer join to the balance keys, not a correlated NOT EXISTS: Citus runs no
-- subquery correlated with rows that are not on the balance row's shard (a ledger that is a
-- reference table, as an `each` ledger is: docs/citus.md).
WITH per_owner AS (
    SELECT r.key, count(*) FILTER (WHERE r.invalid) AS invalid_rows
    FROM ({rows}) AS r
    GROUP BY r.key
)
SELECT coalesce(sum(o.invalid_rows), 0)::bigint AS invalid_rows,
       count(*) FILTER (WHERE b.key IS NULL) AS without_profile
FROM per_owner AS o
LEFT JOIN (SELECT DISTINCT balance.{key} AS key FROM {balance} AS balance WHERE {where}) AS b
    ON b.key = o.key
