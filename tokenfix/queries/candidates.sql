-- Every selected owner whose status is not ok (drift or missing_profile), in the key's own
-- order, then one last row counting every owner checked, with the cached and expected totals
-- over every owner with a balance row (docs/monitoring.md, read before anything is written). `recent`: ledger rows inside the
-- settle window, found through each source's time index and checked for the candidates only.
-- Each candidate carries the evidence of its causes (balances.sql), read by the same pass.
WITH compared AS MATERIALIZED (
{balances}
)
SELECT false AS is_total, key AS sort_key, key::text AS key, has_profile,
       current_remaining, current_used, expected_remaining, expected_used,
       drift_remaining, drift_used, key = ANY({recent}) AS recent, row_id,
       starting, granted, deducted, override_difference, failed_charge_tokens,
       failed_charge_tokens_priced, early,
       NULL::bigint AS users_checked, NULL::numeric AS cached_remaining_total,
       NULL::numeric AS cached_used_total, NULL::numeric AS expected_remaining_total,
       NULL::numeric AS expected_used_total
FROM compared
WHERE attention
UNION ALL
SELECT true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(*),
       coalesce(sum(current_remaining) FILTER (WHERE has_profile), 0),
       coalesce(sum(current_used) FILTER (WHERE has_profile), 0),
       coalesce(sum(expected_remaining) FILTER (WHERE has_profile), 0),
       coalesce(sum(expected_used) FILTER (WHERE has_profile), 0)
FROM compared
ORDER BY is_total, sort_key
