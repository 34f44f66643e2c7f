-- Given keys with neither a balance row nor a ledger row (a typo, or the wrong database).
SELECT g.key::text
FROM unnest(%(keys)s::text[]::{key_type}[]) AS g (key)
WHERE NOT EXISTS (SELECT FROM {balance} AS balance WHERE balance.{key} = g.key AND {where})
  AND {no_ledger_rows}
ORDER BY g.key
