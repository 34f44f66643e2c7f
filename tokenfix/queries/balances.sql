-- Expected balances (SPEC §3) of a selection of users beside their cached rows.
-- One pass over the selected ledger rows: each row's class and tokens are computed once
-- (OFFSET 0 keeps the subquery from being flattened into the aggregates, which would evaluate
-- the override CASE once per aggregate), then a hash aggregate per user, full-joined with the
-- profiles so that users with a profile but no ledger rows are checked too.
WITH classified AS (
    SELECT u.user_id, {row_kind} AS kind, {effective} AS tokens
    FROM {usage} AS u
    WHERE {ledger_selection}
    OFFSET 0
), ledger AS (
    SELECT user_id,
           sum(CASE kind WHEN 1 THEN tokens WHEN 2 THEN -tokens WHEN 3 THEN -tokens END)
               AS remaining_delta,
           sum(tokens) FILTER (WHERE kind = 3) AS charged
    FROM classified
    GROUP BY user_id
), cached AS (
    SELECT p.user_id, p.{remaining} AS remaining, p.{used} AS used
    FROM {profiles} AS p
    WHERE {profile_selection}
)
SELECT coalesce(l.user_id, c.user_id) AS user_id,
       c.user_id IS NOT NULL AS has_profile,
       c.remaining::bigint AS current_remaining,
       c.used::bigint AS current_used,
       %(starting_balance)s::bigint + coalesce(l.remaining_delta, 0) AS expected_remaining,
       coalesce(l.charged, 0)::bigint AS expected_used
FROM ledger AS l
FULL JOIN cached AS c ON c.user_id = l.user_id
