-- The evidence the likely causes (docs/commands.md) are tested against that the pass computing the
-- balances cannot sum (docs/performance.md): it came with each candidate (balances.sql), but
-- two causes need rows read again, and only for the owners that may show them, all of them in
-- one set-based statement, never a statement per batch of owners:
-- - %(early)s: owners with a ledger row older than their balance row: what their rows older
--   than it did (what reached the ledger before the profile existed);
-- - %(stopped)s: owners whose drift looks like a cache that stopped updating, with their
--   remaining drifts (%(stopped_drifts)s): the latest time from which their charges add up to
--   exactly that drift (a newest-first running sum).
-- Keys come as one text array each (the planner knows their number); the stopped owners'
-- drifts as a second array, unnested on its own and joined by position once (never
-- subscripted per row: a numeric array is walked from its start at each lookup).
WITH early_owners AS MATERIALIZED (
    SELECT balance.{key} AS key, {created_at} AS created_at
    FROM {balance} AS balance
    WHERE balance.{key} = ANY(%(early)s::text[]::{key_type}[]) AND {where}
), stopped_drifts AS MATERIALIZED (
    SELECT k.key::{key_type} AS key, v.drift AS drift_remaining
    FROM unnest(%(stopped)s::text[]) WITH ORDINALITY AS k (key, position)
    JOIN unnest(%(stopped_drifts)s::text[]::numeric[]) WITH ORDINALITY AS v (drift, position)
        USING (position)
), early AS (
    SELECT r.key, count(*) AS records,
           coalesce(sum(CASE r.code WHEN 1 THEN r.amount WHEN 2 THEN -r.amount
                                    WHEN 3 THEN -coalesce(r.price, r.amount) END), 0)
               AS remaining,
           coalesce(sum(coalesce(r.price, r.amount)) FILTER (WHERE r.code = 3), 0) AS used
    FROM (
{early_rows}
    ) AS r
    JOIN early_owners AS b ON b.key = r.key
    WHERE r.at < b.created_at
    GROUP BY r.key
), suffix AS (
    SELECT r.key, r.at, d.drift_remaining,
           count(*) OVER newest_first AS charges,
           sum(coalesce(r.price, r.amount)) OVER newest_first AS tokens
    FROM (
{stopped_rows}
    ) AS r
    JOIN stopped_drifts AS d ON d.key = r.key
    WHERE r.code = 3
    WINDOW newest_first AS (PARTITION BY r.key ORDER BY r.at DESC, r.source DESC, r.id DESC
                            ROWS UNBOUNDED PRECEDING)
), stopped AS (
    SELECT DISTINCT ON (s.key) s.key, s.at, s.charges, s.tokens
    FROM suffix AS s
    WHERE s.tokens = s.drift_remaining
    ORDER BY s.key, s.at DESC
)
SELECT coalesce(p.key, s.key)::text, coalesce(p.records, 0), coalesce(p.remaining, 0),
       coalesce(p.used, 0), s.at, s.charges, s.tokens
FROM early AS p
FULL JOIN stopped AS s ON s.key = p.key
