-- lots_stream.sql's rows of one [[lots]] source, as the mapping reads them (an invalid lot,
-- amount NULL or <= 0 or no time, is left for the fold to ignore): the lot (row_type 1)
-- and where it ends (row_type 3, at its expiry and at its void: what splits the runs of
-- charges). A lot is recent when it became spendable inside the settle window: one
-- scheduled for later is not activity. `fence`: OFFSET 0 on one server, none on Citus (as in
-- lots_stream_ledger.sql).
SELECT e.row_type, l.key, e.at, {source_name}::text, l.id, l.amount, l.expires_at,
       l.voided_at, l.priority,
       e.row_type = 1 AND coalesce(l.at > {recent} AND l.at <= statement_timestamp(), false),
       NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric,
       NULL::numeric
FROM (
    SELECT {key} AS key, ({at})::timestamptz AS at, ({id})::text AS id,
           ({amount})::numeric AS amount, ({expires_at})::timestamptz AS expires_at,
           ({voided_at})::timestamptz AS voided_at, ({priority})::numeric AS priority
    FROM {table}
    WHERE {where} AND {selection}
    {fence}
) AS l
CROSS JOIN LATERAL (VALUES (1, l.at), (3, l.expires_at), (3, l.voided_at)) AS e (row_type, at)
WHERE e.row_type = 1 OR e.at IS NOT NULL
