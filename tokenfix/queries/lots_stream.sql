-- Each selected owner's balance row, lots and ledger rows, in key, time order: what the lots
-- fold (tokenfix.lots) reads, one owner at a time, so memory holds one owner. row_type 0 is
-- the balance row, 1 a lot, 2 a ledger row (kind 1 grant, 2 deduct, 3 charge; rows with no
-- effect are left out). `recent`: inside the settle window. The key travels as text (what
-- the fold groups by), ordered in its own type.
SELECT s.row_type, s.key::text, s.at, s.source, s.id, s.amount, s.kind, s.expires_at,
       s.voided_at, s.priority, s.recent, s.current_remaining, s.current_used, s.starting,
       s.tolerance
FROM (
{parts}
) AS s
ORDER BY s.key, s.at NULLS FIRST, s.row_type
