-- The evidence the likely causes (docs/commands.md) are tested against, for every drifting owner of a
-- run in one set-based pass (docs/performance.md), never a statement per batch of owners. Their rows are
-- read once by each source's key index and summed per owner and class in one hash aggregate,
-- without joining anything to the rows. Only two smaller reads follow, each for the owners
-- that need it: the rows of owners with rows older than their balance row (what reached the
-- ledger before the profile existed), and the charges of owners whose drift looks like a
-- cache that stopped updating (the latest time from which their charges add up to exactly
-- their remaining drift). Keys come as one text array each (the planner knows their number);
-- the stopped owners' drifts as a second array, unnested on its own and joined by position
-- once (never subscripted per row: a numeric array is walked from its start at each lookup).
WITH owners AS MATERIALIZED (
    SELECT k.key::{key_type} AS key, k.key AS owner
    FROM unnest(%(keys)s::text[]) AS k (key)
), balances AS MATERIALIZED (
    SELECT balance.{key} AS key, {created_at} AS created_at, {starting} AS starting
    FROM {balance} AS balance
    WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where}
), stopped_drifts AS MATERIALIZED (
    SELECT k.key::{key_type} AS key, v.drift AS drift_remaining
    FROM unnest(%(stopped)s::text[]) WITH ORDINALITY AS k (key, position)
    JOIN unnest(%(stopped_drifts)s::text[]::numeric[]) WITH ORDINALITY AS v (drift, position)
        USING (position)
), classes AS MATERIALIZED (
    SELECT r.key, r.code, count(*) AS records, sum(r.amount) AS amount,
           sum(coalesce(r.price, r.amount)) AS effective, count(r.price) AS priced,
           sum(r.price - r.amount) AS price_difference, min(r.at) AS first_at
    FROM (
{rows}
    ) AS r
    GROUP BY r.key, r.code
), evidence AS (
    SELECT c.key,
        coalesce(sum(c.amount) FILTER (WHERE c.code = 1), 0) AS granted,
        coalesce(sum(c.amount) FILTER (WHERE c.code = 2), 0) AS deducted,
        coalesce(sum(c.priced) FILTER (WHERE c.code = 3), 0) AS override_records,
        coalesce(sum(c.price_difference) FILTER (WHERE c.code = 3), 0) AS override_difference,
        coalesce(sum(c.amount) FILTER (WHERE c.code = 4), 0) AS failed_charge_tokens,
        coalesce(sum(c.effective) FILTER (WHERE c.code = 4), 0) AS failed_charge_tokens_priced
    FROM classes AS c
    GROUP BY c.key
), early AS (
    SELECT r.key, count(*) AS records,
           coalesce(sum(CASE r.code WHEN 1 THEN r.amount WHEN 2 THEN -r.amount
                                    WHEN 3 THEN -coalesce(r.price, r.amount) END), 0)
               AS remaining,
           coalesce(sum(coalesce(r.price, r.amount)) FILTER (WHERE r.code = 3), 0) AS used
    FROM (
{early_rows}
    ) AS r
    JOIN balances AS b ON b.key = r.key
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
SELECT o.owner, coalesce(b.starting, %(starting_balance)s::numeric),
       coalesce(e.granted, 0), coalesce(e.deducted, 0), coalesce(e.override_records, 0),
       coalesce(e.override_difference, 0), coalesce(p.records, 0), coalesce(p.remaining, 0),
       coalesce(p.used, 0), coalesce(e.failed_charge_tokens, 0),
       coalesce(e.failed_charge_tokens_priced, 0), s.at, s.charges, s.tokens
FROM owners AS o
LEFT JOIN balances AS b ON b.key = o.key
LEFT JOIN evidence AS e ON e.key = o.key
LEFT JOIN early AS p ON p.key = o.key
LEFT JOIN stopped AS s ON s.key = o.key
