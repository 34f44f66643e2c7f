-- source_rows.sql for a list-valued source (`each`, docs/mapping.md): the same rows, classes
-- and amounts. An element's amount is an expression over `item` (a lookup in the element and
-- a parse to numeric, per element), which the row's class would evaluate a second time; so a
-- first level computes each row's amount, and what its class reads (`counted`, the kind as a
-- code), once, fenced by OFFSET 0, and the class is decided over those columns. Not on Citus,
-- which would not push the fence down to the shards (source_rows.sql).
SELECT tf_row.key, {kind_code} AS kind, tf_row.amount, tf_row.price, tf_row.at
FROM (
    SELECT {key} AS key, {amount} AS amount, {counted} AS counted, {code} AS code,
           {price} AS price, {at} AS at
    FROM {table}{period_join}
    WHERE {where} AND {selection} AND {in_period}
    OFFSET 0
) AS tf_row
OFFSET 0
