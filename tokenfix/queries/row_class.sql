CASE
    WHEN u.tokens_used IS NULL OR u.tokens_used < 0 OR u.success IS NULL THEN 'invalid'
    WHEN NOT u.success THEN 'failed'
    WHEN u.tokens_used = 0 THEN 'zero'
    WHEN {grant} THEN 'grant'
    WHEN {deduct} THEN 'deduct'
    ELSE 'charge'
END
