-- "The balance stopped updating at T": the latest time T from which the owner's charges add
-- up to exactly %(missing)s (the drift a cache that ignored them would show).
WITH classified AS (
{classified}
)
SELECT at, charges, tokens
FROM (
    SELECT c.at, c.source, c.id,
           count(*) OVER newest_first AS charges,
           sum(coalesce(c.price, c.amount)) OVER newest_first AS tokens
    FROM classified AS c
    WHERE c.class = 'charge'
    WINDOW newest_first AS (ORDER BY c.at DESC, c.source DESC, c.id DESC
                            ROWS UNBOUNDED PRECEDING)
) AS suffix
WHERE tokens = %(missing)s
ORDER BY at DESC, source DESC, id DESC
LIMIT 1
