-- One ledger source's rows for the all-owners aggregate: each row's owner, what it does (0 no
-- effect, 1 grant, 2 deduct, 3 charge), its amount and its override price, computed once per
-- row (OFFSET 0 keeps the planner from inlining them into every aggregate that uses them).
SELECT {key} AS key, {kind_code} AS kind, {amount} AS amount, {price} AS price
FROM {table}
WHERE {where} AND {selection}
OFFSET 0
