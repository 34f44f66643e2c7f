-- One ledger source's rows for the all-owners aggregate: each row's owner, what it does (0 no
-- effect, 1 grant, 2 deduct, 3 charge, 4 a failed charge: no effect either), its amount, its
-- override price and its time, computed once per row (`fence`, OFFSET 0, keeps the planner from
-- inlining them into every aggregate that uses them). On Citus (docs/citus.md) the fence is an
-- ORDER BY a constant (no sort): Citus pushes no subquery with an OFFSET down to the shards.
-- With periods, `period_join` joins each row to its owner's period (the `periods` CTE, one
-- row per owner: a hash join) and `in_period` keeps the rows inside it.
SELECT {key} AS key, {kind_code} AS kind, {amount} AS amount, {price} AS price, {at} AS at
FROM {table}{period_join}
WHERE {where} AND {selection} AND {in_period}
{fence}
