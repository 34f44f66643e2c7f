-- The ledger keys without a balance row (docs/performance.md, periods): such an owner has no
-- period and all its rows count, the oldest too, so a pass that drops the rows before every
-- period (`period_window`) reads theirs again by key. Found through the ledger's index on its
-- key, in the balance key's order, never by testing each ledger row: one probe per gap between
-- two consecutive balance keys (and before the first, after the last) tells whether a ledger
-- key lies in it; only the gaps that hold one are walked, key after key. With no row before
-- the window (`low` is -infinity) nothing is probed. The gaps are handed over as arrays: the
-- planner counts on a few of them, as there are, instead of a share of the owners.
SELECT ARRAY(
    WITH RECURSIVE walk (key, hi) AS (
        SELECT CASE WHEN g.lo IS NULL
                    THEN (SELECT min(ledger.{ledger_key}) FROM {ledger}
                          WHERE ledger.{ledger_key} < g.hi)
                    WHEN g.hi IS NULL
                    THEN (SELECT min(ledger.{ledger_key}) FROM {ledger}
                          WHERE ledger.{ledger_key} > g.lo)
                    ELSE (SELECT min(ledger.{ledger_key}) FROM {ledger}
                          WHERE ledger.{ledger_key} > g.lo AND ledger.{ledger_key} < g.hi) END,
               g.hi
        FROM unnest(gaps.lo, gaps.hi) AS g (lo, hi)
        UNION ALL
        SELECT CASE WHEN walk.hi IS NULL
                    THEN (SELECT min(ledger.{ledger_key}) FROM {ledger}
                          WHERE ledger.{ledger_key} > walk.key)
                    ELSE (SELECT min(ledger.{ledger_key}) FROM {ledger}
                          WHERE ledger.{ledger_key} > walk.key
                            AND ledger.{ledger_key} < walk.hi) END,
               walk.hi
        FROM walk
        WHERE walk.key IS NOT NULL
    )
    SELECT walk.key FROM walk WHERE walk.key IS NOT NULL
) AS keys
FROM (
    -- Each gap that holds a ledger key: (lo, hi), NULL for no bound. min() and max() read the
    -- index from one end; an EXISTS with one bound would be planned as a scan that stops at
    -- its first row (a third of the table, says the estimate), and reads it all when none
    -- matches. Between two bounds the estimate is narrow and EXISTS takes the index.
    SELECT array_agg(g.lo) AS lo, array_agg(g.hi) AS hi
    FROM (
        SELECT NULL AS lo, b.hi
        FROM (SELECT min(balance.{key}) AS hi FROM {balance}) AS b
        WHERE (SELECT min(ledger.{ledger_key}) FROM {ledger}
               WHERE ledger.{ledger_key} < b.hi) IS NOT NULL
        UNION ALL
        SELECT b.lo, NULL
        FROM (SELECT max(balance.{key}) AS lo FROM {balance}) AS b
        WHERE (SELECT max(ledger.{ledger_key}) FROM {ledger}
               WHERE ledger.{ledger_key} > b.lo) IS NOT NULL
        UNION ALL
        SELECT b.lo, b.hi
        FROM (SELECT balance.{key} AS lo, lead(balance.{key}) OVER (ORDER BY balance.{key}) AS hi
              FROM {balance}) AS b
        WHERE EXISTS (SELECT FROM {ledger}
                      WHERE ledger.{ledger_key} > b.lo AND ledger.{ledger_key} < b.hi)
    ) AS g
    WHERE (SELECT low FROM period_window) > '-infinity'
) AS gaps
