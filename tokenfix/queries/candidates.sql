-- Every selected owner whose status is not ok (drift or missing_profile), in the key's own
-- order, then one last row counting every owner checked. `recent`: ledger rows inside the
-- settle window, found through each source's time index and checked for the candidates only.
WITH compared AS MATERIALIZED (
{balances}
)
SELECT false AS is_total, key AS sort_key, key::text AS key, has_profile,
       current_remaining, current_used, expected_remaining, expected_used,
       drift_remaining, drift_used, key = ANY({recent}) AS recent,
       NULL::bigint AS users_checked
FROM compared
WHERE attention
UNION ALL
SELECT true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(*)
FROM compared
ORDER BY is_total, sort_key
