-- lots_stream.sql's balance rows: the cached values, the starting lot, the tolerance. Read
-- through a subquery, as the other parts are: Citus pushes a UNION ALL down to the shards
-- only when its parts are alike (docs/citus.md); PostgreSQL flattens it.
SELECT 0 AS row_type, b.key, NULL::timestamptz AS at, NULL::text AS source,
       NULL::text AS id, NULL::numeric AS amount,
       NULL::timestamptz AS expires_at, NULL::timestamptz AS voided_at,
       NULL::numeric AS priority, false AS recent,
       b.current_remaining, b.current_used, b.starting, b.tolerance,
       NULL::numeric AS spend, NULL::numeric AS charge
FROM (
    SELECT balance.{key} AS key,
           ({remaining})::numeric AS current_remaining, ({used})::numeric AS current_used,
           ({starting})::numeric AS starting, ({tolerance})::numeric AS tolerance
    FROM {balance} AS balance
    WHERE {where} AND {selection}
) AS b
