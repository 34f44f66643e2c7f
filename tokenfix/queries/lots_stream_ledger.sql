-- lots_stream.sql's rows of one ledger source that move the balance: grants (lots of
-- priority 0 that never expire, row_type 2), deducts and charges (row_type 4: what they
-- burn, `spend`, a charge at its effective amount; what charges count as used, `charge`;
-- summed in runs, so their source and id are not read). `fence`, OFFSET 0, computes each
-- row's class once; on Citus none: it pushes no subquery with an OFFSET down to the shards.
SELECT CASE r.kind WHEN 1 THEN 2 ELSE 4 END, r.key, r.at,
       CASE r.kind WHEN 1 THEN {source_name}::text END, CASE r.kind WHEN 1 THEN r.id END,
       CASE r.kind WHEN 1 THEN r.amount END, NULL::timestamptz, NULL::timestamptz,
       NULL::numeric, coalesce(r.at > {recent}, false),
       NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric,
       CASE r.kind WHEN 2 THEN r.amount WHEN 3 THEN greatest({effective}, 0) END,
       CASE r.kind WHEN 3 THEN {effective} END
FROM (
    SELECT {key} AS key, {kind_code} AS kind, {amount} AS amount, {price} AS price,
           ({at})::timestamptz AS at, {id} AS id
    FROM {table}
    WHERE {where} AND {selection}
    {fence}
) AS r
WHERE r.kind <> 0
