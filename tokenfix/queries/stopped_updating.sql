-- "The balance stopped updating at T": the latest time T from which the user's charges add
-- up to exactly %(missing)s tokens (the drift a cache that ignored them would show).
SELECT created_at, charges, tokens
FROM (
    SELECT u.id,
           u.created_at,
           count(*) OVER newest_first AS charges,
           sum({effective}) OVER newest_first AS tokens
    FROM {usage} AS u
    WHERE u.user_id = %(user_id)s AND {charge_row}
    WINDOW newest_first AS (ORDER BY u.created_at DESC, u.id DESC ROWS UNBOUNDED PRECEDING)
) AS suffix
WHERE tokens = %(missing)s
ORDER BY created_at DESC, id DESC
LIMIT 1
