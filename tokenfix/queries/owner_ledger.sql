-- The owner's last %(limit)s ledger rows (every source), oldest first, each with its class,
-- the amount it moves and the expected remaining balance after it (running over the whole
-- ledger).
WITH classified AS (
{classified}
)
SELECT source, id, at, action, model, amount, counted, class, effective, expected_remaining
FROM (
    SELECT c.*,
           CASE WHEN c.class = 'charge' THEN coalesce(c.price, c.amount)
                WHEN c.class IN ('grant', 'deduct') THEN c.amount
                ELSE 0 END AS effective,
           %(starting)s::numeric + sum(
               CASE c.class WHEN 'grant' THEN c.amount
                            WHEN 'deduct' THEN -c.amount
                            WHEN 'charge' THEN -coalesce(c.price, c.amount)
                            ELSE 0 END
           ) OVER (ORDER BY c.at, c.source, c.id ROWS UNBOUNDED PRECEDING) AS expected_remaining
    FROM classified AS c
    ORDER BY c.at DESC, c.source DESC, c.id DESC
    LIMIT %(limit)s
) AS last_rows
ORDER BY at, source, id
