-- The per-user query looped in one session: the expected balance of one user, as
-- sql/diagnostics/expected_balance.sql computes it (LATERAL override lookup, by index).
WITH ledger AS (
    SELECT u.*,
           CASE
               WHEN u.tokens_used IS NULL OR u.tokens_used < 0 OR u.success IS NULL THEN 'invalid'
               WHEN NOT u.success THEN 'failed'
               WHEN u.tokens_used = 0 THEN 'zero'
               WHEN u.action_type = 'admin_grant' THEN 'grant'
               WHEN u.action_type = 'admin_deduct' THEN 'deduct'
               ELSE 'charge'
           END AS row_class
    FROM token_usage AS u
    WHERE u.user_id = %(user_id)s
), priced AS (
    SELECT l.row_class, l.tokens_used, coalesce(best.token_cost, l.tokens_used) AS effective
    FROM ledger AS l
    LEFT JOIN LATERAL (
        SELECT o.token_cost
        FROM ai_action_token_overrides AS o
        WHERE l.row_class = 'charge' AND o.is_active AND o.action_type = l.action_type
          AND (o.model_used IS NULL OR o.model_used = l.model_used)
          AND (o.valid_from IS NULL OR l.created_at >= o.valid_from)
          AND (o.valid_until IS NULL OR l.created_at < o.valid_until)
        ORDER BY o.model_used IS NOT NULL DESC, o.valid_from DESC NULLS LAST, o.id DESC
        LIMIT 1
    ) AS best ON true
)
SELECT %(starting_balance)s
       + coalesce(sum(tokens_used) FILTER (WHERE row_class = 'grant'), 0)
       - coalesce(sum(tokens_used) FILTER (WHERE row_class = 'deduct'), 0)
       - coalesce(sum(effective) FILTER (WHERE row_class = 'charge'), 0),
       coalesce(sum(effective) FILTER (WHERE row_class = 'charge'), 0),
       (SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %(user_id)s)
FROM priced
