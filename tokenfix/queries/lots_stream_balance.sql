-- lots_stream.sql's balance rows: the cached values, the starting lot, the tolerance.
SELECT 0 AS row_type, balance.{key} AS key, NULL::timestamptz AS at, NULL::text AS source,
       NULL::text AS id, NULL::numeric AS amount,
       NULL::timestamptz AS expires_at, NULL::timestamptz AS voided_at,
       NULL::numeric AS priority, false AS recent,
       ({remaining})::numeric AS current_remaining, ({used})::numeric AS current_used,
       ({starting})::numeric AS starting, ({tolerance})::numeric AS tolerance,
       NULL::numeric AS spend, NULL::numeric AS charge
FROM {balance} AS balance
WHERE {where} AND {selection}
