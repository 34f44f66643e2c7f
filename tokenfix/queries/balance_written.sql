-- The written columns of some owners' balance rows as they are now, without a lock: what a
-- preview (revert --dry-run) shows as "now". The write itself reads them under lock_balances.
SELECT balance.{key}::text AS key, {written} AS now
FROM {balance} AS balance
WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where} AND {chosen}
