CASE
    WHEN u.tokens_used IS NULL OR u.tokens_used < 0 OR u.success IS NULL THEN 'invalid'
    WHEN NOT u.success THEN 'failed'
    WHEN u.tokens_used = 0 THEN 'zero'
    WHEN u.action_type = ANY(%(grant_actions)s) THEN 'grant'
    WHEN u.action_type = ANY(%(deduct_actions)s) THEN 'deduct'
    ELSE 'charge'
END
