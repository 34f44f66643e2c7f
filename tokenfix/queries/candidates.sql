-- Every selected user whose status is not ok (drift or missing_profile), in user_id order,
-- then one last row counting every user checked. A NULL cached value is drift, never ok. `recent`: ledger rows inside the settle
-- window, found through the created_at index and checked for the candidates only.
WITH compared AS MATERIALIZED (
{balances}
)
SELECT false AS is_total, user_id, has_profile, current_remaining, current_used,
       expected_remaining, expected_used, user_id = ANY({recent_users}) AS recent,
       NULL::bigint AS users_checked
FROM compared
WHERE NOT has_profile
   OR current_remaining IS DISTINCT FROM expected_remaining
   OR current_used IS DISTINCT FROM expected_used
UNION ALL
SELECT true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(*)
FROM compared
ORDER BY is_total, user_id
