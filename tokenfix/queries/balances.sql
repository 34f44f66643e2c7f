-- Expected balances (SPEC §3) of a selection of users beside their cached rows.
-- One pass over the selected ledger rows: a hash aggregate per user, full-joined with the
-- profiles, so users with a profile but no ledger rows are checked too.
WITH ledger AS (
    SELECT u.user_id,
           max(u.created_at) AS last_activity,
           coalesce(sum(u.tokens_used) FILTER (WHERE {grant_row}), 0) AS granted,
           coalesce(sum(u.tokens_used) FILTER (WHERE {deduct_row}), 0) AS deducted,
           coalesce(sum({effective}) FILTER (WHERE {charge_row}), 0) AS charged
    FROM {usage} AS u
    WHERE {ledger_selection}
    GROUP BY u.user_id
), cached AS (
    SELECT p.user_id, p.{remaining} AS remaining, p.{used} AS used
    FROM {profiles} AS p
    WHERE {profile_selection}
)
SELECT coalesce(l.user_id, c.user_id) AS user_id,
       c.user_id IS NOT NULL AS has_profile,
       c.remaining::bigint AS current_remaining,
       c.used::bigint AS current_used,
       %(starting_balance)s::bigint + coalesce(l.granted, 0) - coalesce(l.deducted, 0)
           - coalesce(l.charged, 0) AS expected_remaining,
       coalesce(l.charged, 0)::bigint AS expected_used,
       coalesce(l.last_activity > statement_timestamp() - %(settle)s::interval, false) AS recent
FROM ledger AS l
FULL JOIN cached AS c ON c.user_id = l.user_id
