-- One ledger source's rows of some drifting owners, for the causes' evidence (docs/monitoring.md): read
-- by the source's key index and classified as the all-owners pass classifies them
-- (source_rows.sql: 0 no effect, 1 grant, 2 deduct, 3 charge), a failed charge (not counted,
-- a positive amount, kind charge) as 4; with its override price, its time and its place in
-- the source's order.
SELECT {key} AS key,
       CASE WHEN coalesce(NOT {counted} AND {amount} > 0 AND ({kind})::text = 'charge', false)
            THEN 4 ELSE {kind_code} END AS code,
       {amount} AS amount, {price} AS price, ({at})::timestamptz AS at,
       {source_name}::text AS source, {id} AS id
FROM {table} AS l
WHERE {where} AND {selection}
