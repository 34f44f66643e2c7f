-- Two balance rows to probe with (any two will do): the first is the probe user's own, the
-- second another owner's. The subject is the owner's JWT `sub`, as text; then the spendable
-- balance (NULL when the mapping's is not an expression a probe can read back).
SELECT balance.{key}, ({subject})::text, {spendable}, {columns} FROM {table} LIMIT 2
