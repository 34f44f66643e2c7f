-- One owner's ledger summarised under docs/mapping.md, per source. Counts are per row class, so
-- failed + zero + invalid + ignored + out_of_period + grant + deduct + charge = total. The
-- last columns are the evidence the likely causes of a drift are tested against.
WITH classified AS (
{classified}
)
SELECT source,
    count(*) AS total_records,
    coalesce(sum(amount), 0) AS total_tokens_logged,
    count(*) FILTER (WHERE class = 'failed') AS failed_records,
    count(*) FILTER (WHERE class = 'zero') AS zero_token_records,
    count(*) FILTER (WHERE class = 'invalid') AS invalid_records,
    count(*) FILTER (WHERE class = 'ignored') AS ignored_records,
    count(*) FILTER (WHERE class = 'out_of_period') AS out_of_period_records,
    count(*) FILTER (WHERE at < %(profile_created_at)s) AS records_before_profile,
    count(*) FILTER (WHERE class = 'grant') AS grant_records,
    coalesce(sum(amount) FILTER (WHERE class = 'grant'), 0) AS granted_tokens,
    count(*) FILTER (WHERE class = 'deduct') AS deduct_records,
    coalesce(sum(amount) FILTER (WHERE class = 'deduct'), 0) AS deducted_tokens,
    count(*) FILTER (WHERE class = 'charge') AS charge_records,
    coalesce(sum(coalesce(price, amount)) FILTER (WHERE class = 'charge'), 0) AS charged_tokens,
    count(*) FILTER (WHERE class = 'charge' AND price IS NOT NULL) AS override_records,
    coalesce(sum(price - amount) FILTER (WHERE class = 'charge' AND price IS NOT NULL), 0)
        AS override_token_difference,
    min(at) AS first_activity,
    max(at) AS last_activity,
    coalesce(sum(amount) FILTER (WHERE class = 'grant' AND at < %(profile_created_at)s), 0)
        AS granted_before_profile,
    coalesce(sum(amount) FILTER (WHERE class = 'deduct' AND at < %(profile_created_at)s), 0)
        AS deducted_before_profile,
    coalesce(sum(coalesce(price, amount))
             FILTER (WHERE class = 'charge' AND at < %(profile_created_at)s), 0)
        AS charged_before_profile,
    coalesce(sum(amount) FILTER (WHERE class = 'failed' AND kind = 'charge' AND amount > 0), 0)
        AS failed_charge_tokens,
    coalesce(sum(coalesce(price, amount))
             FILTER (WHERE class = 'failed' AND kind = 'charge' AND amount > 0), 0)
        AS failed_charge_tokens_priced
FROM classified
GROUP BY source
ORDER BY source
