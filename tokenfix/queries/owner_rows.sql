-- Some owners' rows of one ledger source (one owner, or a batch of them), as the
-- mapping reads them, each with its class (SPEC §10, top-down) and override price. Read
-- through the source's key index.
SELECT n.*, {row_class} AS class, {price} AS price
FROM (
    SELECT {owner}::text AS owner, {source_name}::text AS source, {id} AS id,
           ({at})::timestamptz AS at, {amount} AS amount, ({kind})::text AS kind,
           {counted} AS counted, ({action})::text AS action, ({model})::text AS model
    FROM {table}
    WHERE {where} AND {key_filter}
) AS n
