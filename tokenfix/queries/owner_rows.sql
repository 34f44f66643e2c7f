-- Some owners' rows of one ledger source (one owner, or a batch of them), as the
-- mapping reads them, each with its class (docs/balance-model.md, top-down; a row outside
-- its owner's period is out_of_period before anything else, base_class its class without
-- periods) and override price. Read through the source's key index.
SELECT n.*, CASE WHEN n.out_of_period THEN 'out_of_period' ELSE {row_class} END AS class,
       {row_class} AS base_class, {price} AS price
FROM (
    SELECT {owner}::text AS owner, {source_name}::text AS source, {id} AS id,
           ({at})::timestamptz AS at, {amount} AS amount, ({kind})::text AS kind,
           {counted} AS counted, ({action})::text AS action, ({model})::text AS model,
           NOT coalesce({in_period}, false) AS out_of_period
    FROM {table}{period_join}
    WHERE {where} AND {key_filter}
) AS n
