-- One user's ledger summarised under SPEC §3, read through the token_usage(user_id) index.
-- Counts are per row class, so failed + zero + invalid + grant + deduct + charge = total.
-- The last five columns are the evidence the likely causes of a drift are tested against.
SELECT
    count(*) AS total_records,
    coalesce(sum(u.tokens_used), 0) AS total_tokens_logged,
    count(*) FILTER (WHERE {failed_row}) AS failed_records,
    count(*) FILTER (WHERE {zero_row}) AS zero_token_records,
    count(*) FILTER (WHERE {invalid_row}) AS invalid_records,
    count(*) FILTER (WHERE u.created_at < %(profile_created_at)s) AS records_before_profile,
    count(*) FILTER (WHERE {grant_row}) AS grant_records,
    coalesce(sum(u.tokens_used) FILTER (WHERE {grant_row}), 0) AS granted_tokens,
    count(*) FILTER (WHERE {deduct_row}) AS deduct_records,
    coalesce(sum(u.tokens_used) FILTER (WHERE {deduct_row}), 0) AS deducted_tokens,
    count(*) FILTER (WHERE {charge_row}) AS charge_records,
    coalesce(sum({effective}) FILTER (WHERE {charge_row}), 0) AS charged_tokens,
    count(*) FILTER (WHERE {charge_row} AND {override_price} IS NOT NULL) AS override_records,
    coalesce(sum({override_price} - u.tokens_used)
             FILTER (WHERE {charge_row} AND {override_price} IS NOT NULL), 0)
        AS override_token_difference,
    min(u.created_at) AS first_activity,
    max(u.created_at) AS last_activity,
    coalesce(sum(u.tokens_used)
             FILTER (WHERE {grant_row} AND u.created_at < %(profile_created_at)s), 0)
        AS granted_before_profile,
    coalesce(sum(u.tokens_used)
             FILTER (WHERE {deduct_row} AND u.created_at < %(profile_created_at)s), 0)
        AS deducted_before_profile,
    coalesce(sum({effective})
             FILTER (WHERE {charge_row} AND u.created_at < %(profile_created_at)s), 0)
        AS charged_before_profile,
    coalesce(sum(u.tokens_used) FILTER (WHERE {failed_charge_row}), 0) AS failed_charge_tokens,
    coalesce(sum({effective}) FILTER (WHERE {failed_charge_row}), 0) AS failed_charge_tokens_priced
FROM {usage} AS u
WHERE u.user_id = %(user_id)s
