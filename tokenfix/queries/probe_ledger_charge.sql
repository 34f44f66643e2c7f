-- A charge row to probe the ledger with (any will do): its owner plays the probe's user, who
-- tries to lower or delete it. One with a few tokens, so that lowering it shows.
SELECT {id}, {key}, {amount}, {action}, {model}
FROM {table}
WHERE {action} <> ALL (%(non_charge)s::text[]) AND {amount} >= 2 AND {counted}
LIMIT 1
