-- What the owner's rows of the previous period alone do to the remaining balance (the
-- period_not_reset cause): rows with period_start - period_length <= at < period_start,
-- by their class without periods.
WITH classified AS (
{classified}
)
SELECT coalesce(sum(CASE base_class WHEN 'grant' THEN amount
                                    WHEN 'deduct' THEN -amount
                                    WHEN 'charge' THEN -coalesce(price, amount)
                                    ELSE 0 END), 0) AS remaining_delta,
       coalesce(sum(coalesce(price, amount)) FILTER (WHERE base_class = 'charge'), 0) AS charged,
       count(*) FILTER (WHERE base_class = 'charge') AS charges
FROM classified
WHERE at >= %(period_start)s::timestamptz - %(period_length)s::interval
  AND at < %(period_start)s::timestamptz
