-- The spendable balance of one balance row (the mapping's remaining side): read by the tool
-- before a probe and inside its savepoint after, to see whether the probe raised it.
SELECT ({spendable}) FROM {table} WHERE balance.{key} = %(key)s
