-- The owners' periods (docs/balance-model.md, periods): one row per balance row, its bounds
-- as the mapping computes them (NULL: no bound). Joined to the ledger rows by owner.
SELECT balance.{key} AS key, ({period_start})::timestamptz AS period_start,
       ({period_end})::timestamptz AS period_end
FROM {balance}
WHERE {where} AND {selection}
