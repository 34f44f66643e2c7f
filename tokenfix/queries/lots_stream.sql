-- Each selected owner's balance row, lots and ledger rows, in key, time order: what the lots
-- fold (tokenfix.lots) reads, one owner at a time, so memory holds one owner. row_type 0 is
-- the balance row, 1 a lot, 2 a ledger row (kind 1 grant, 2 deduct, 3 charge; rows with no
-- effect are left out). `recent`: inside the settle window.
SELECT s.*
FROM (
{parts}
) AS s
ORDER BY s.key, s.at NULLS FIRST, s.row_type
