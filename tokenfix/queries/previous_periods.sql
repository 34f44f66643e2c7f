-- What the rows of the previous period alone do to the remaining balance, for a batch of
-- drifting owners (%(keys)s) at once (the period_not_reset cause of a reconcile run, as
-- owner_previous_period.sql for diagnose): rows with period_start - period_length <= at <
-- period_start, by their class without periods, beside the cached values and the starting
-- balance. Owners whose period_start or period_length is NULL have no previous period.
WITH classified AS (
{classified}
), owners AS (
    SELECT balance.{key}::text AS owner, ({remaining})::numeric AS remaining,
           ({used})::numeric AS used,
           coalesce(({starting})::numeric, %(starting_balance)s::numeric) AS starting,
           ({period_start})::timestamptz AS period_start,
           ({period_length})::interval AS period_length
    FROM {balance} AS balance
    WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where}
)
SELECT o.owner, o.remaining, o.used, o.starting,
       coalesce(sum(CASE c.base_class WHEN 'grant' THEN c.amount
                                      WHEN 'deduct' THEN -c.amount
                                      WHEN 'charge' THEN -coalesce(c.price, c.amount)
                                      ELSE 0 END), 0) AS remaining_delta,
       coalesce(sum(coalesce(c.price, c.amount)) FILTER (WHERE c.base_class = 'charge'), 0)
           AS charged,
       count(*) FILTER (WHERE c.base_class = 'charge') AS charges
FROM owners AS o
LEFT JOIN classified AS c
       ON c.owner = o.owner AND c.at >= o.period_start - o.period_length
      AND c.at < o.period_start
WHERE o.period_start IS NOT NULL AND o.period_length IS NOT NULL
GROUP BY o.owner, o.remaining, o.used, o.starting
