-- Lock a batch's balance rows in key order (one global order: no deadlock between our
-- batches, and the app waits for at most one batch) and read the written columns as they
-- are: the compare-and-set's "before". NO KEY UPDATE: the app may still insert rows that
-- reference these (ledger rows with a foreign key) while the batch runs. The ledger is read
-- after this, in a fresh statement, so it includes everything committed before the locks.
SELECT balance.{key}::text AS key, {written} AS before
FROM {balance} AS balance
WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where} AND {chosen}
ORDER BY balance.{key}
FOR {strength}
