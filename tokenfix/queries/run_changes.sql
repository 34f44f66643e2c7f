-- The rows a run wrote, in user_id order: the state it left (after) and the one it replaced
-- (before), and the full row it created or deleted. NULL values mean "no row" (a created or
-- a deleted profile).
SELECT user_id, action, before_remaining, before_used, after_remaining, after_used, full_row
FROM {changes}
WHERE run_id = %(run_id)s
ORDER BY user_id, id
