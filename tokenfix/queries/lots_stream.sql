-- Each selected owner's balance row, lots and ledger rows, in key, time order: what the lots
-- fold (tokenfix.ledger.lots) reads, one owner at a time, so memory holds one owner.
-- row_type 0 is the balance row, 1 a lot, 2 a ledger grant (a lot too), 3 where a lot ends
-- (its expiry or void: read here, never sent), 4 charges and deducts. At one instant lots
-- start and end before anything is spent (the fold's order).
--
-- Between two consecutive lot events of an owner (a lot becoming spendable, an expiry, a
-- void) the spendable lots and their burn order do not change, so the charges and deducts
-- in between burn the lots exactly as their sum does (overage included): only the last
-- row of each such run is sent, carrying the owner's running totals (`spent`: what the
-- fold burns, charges priced, `charged`: expected used); the fold takes the difference from
-- the run before. The tool then reads about one row per lot, not one per ledger row.
-- `recent`: inside the settle window (running too). The key travels as text (what the
-- fold groups by), ordered in its own type. Lots of one instant come in source, id order:
-- one order wherever the rows come from (on Citus, the shards answer in any order).
SELECT w.row_type, w.key::text, w.at, w.source, w.id, w.amount, w.expires_at, w.voided_at,
       w.priority, w.recent, w.current_remaining, w.current_used, w.starting, w.tolerance,
       w.spent, w.charged
FROM (
    SELECT s.row_type, s.key, s.at, s.source, s.id, s.amount, s.expires_at, s.voided_at,
           s.priority, s.current_remaining, s.current_used, s.starting, s.tolerance,
           bool_or(s.recent) OVER owner_time AS recent,
           sum(s.spend) OVER owner_time AS spent,
           sum(s.charge) OVER owner_time AS charged,
           lead(s.row_type) OVER owner_time AS next_type
    FROM (
{parts}
    ) AS s
    WINDOW owner_time AS (PARTITION BY s.key ORDER BY s.at NULLS FIRST, s.row_type
                          ROWS UNBOUNDED PRECEDING)
) AS w
WHERE w.row_type < 3 OR (w.row_type = 4 AND w.next_type IS DISTINCT FROM 4)
ORDER BY w.key, w.at NULLS FIRST, w.row_type, w.source, w.id
