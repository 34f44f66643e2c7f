-- Given keys with neither a balance row nor a ledger row (a typo, or the wrong database).
-- Set differences, each side read by its key index, no correlated subquery: Citus runs each
-- side on the shards (docs/citus.md); the ledger side reads no more rows than the run does.
SELECT g.key::text
FROM (
    SELECT k.key FROM unnest(%(keys)s::text[]::{key_type}[]) AS k (key)
    EXCEPT
    SELECT balance.{key} FROM {balance} AS balance
    WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where}
{ledger_keys}
) AS g
ORDER BY g.key
