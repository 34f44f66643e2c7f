-- lots_stream.sql's rows of one ledger source that move the balance: grants (lots of
-- priority 0 that never expire), deducts and charges (their effective amount).
SELECT 2, r.key, r.at, {source_name}::text, r.id, CASE r.kind WHEN 3 THEN {effective} ELSE r.amount END,
       r.kind, NULL::timestamptz,
       NULL::timestamptz, NULL::numeric, coalesce(r.at > {recent}, false),
       NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric
FROM (
    SELECT {key} AS key, {kind_code} AS kind, {amount} AS amount, {price} AS price,
           ({at})::timestamptz AS at, {id} AS id
    FROM {table}
    WHERE {where} AND {selection}
    OFFSET 0
) AS r
WHERE r.kind <> 0
