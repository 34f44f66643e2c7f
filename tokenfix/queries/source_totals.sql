-- One ledger source summed per owner: what its rows do to remaining, and the charges (used);
-- beside them, in the same aggregate, the sums the causes of a drift are tested against
-- (docs/monitoring.md): the grants, the charges at their raw amount (the override difference
-- is the charges' total minus that), the failed charges raw and priced, and the oldest row's
-- time (`first_at`; NULL when the balance side has no created_at). A charge, nearly every
-- row, takes three transitions (priced, raw, oldest): remaining is grants minus deducts (a
-- sum only those rows enter) minus the charges, whose sum is written twice below and
-- computed once (PostgreSQL shares identical aggregates); the deducts follow from the rest.
SELECT s.key, coalesce(s.adjusted, 0) - coalesce(s.charged, 0) AS remaining_delta, s.charged,
       s.granted, s.raw_charged, s.failed, s.failed_priced, s.first_at
FROM (
    SELECT r.key,
           sum(CASE r.kind WHEN 1 THEN r.amount ELSE -r.amount END)
               FILTER (WHERE r.kind BETWEEN 1 AND 2) AS adjusted,
           sum({effective}) FILTER (WHERE r.kind = 3) AS charged,
           sum(r.amount) FILTER (WHERE r.kind = 1) AS granted,
           sum(r.amount) FILTER (WHERE r.kind = 3) AS raw_charged,
           sum(r.amount) FILTER (WHERE r.kind = 4) AS failed,
           sum({effective}) FILTER (WHERE r.kind = 4) AS failed_priced,
           {first_at} AS first_at
    FROM ({rows}) AS r
    GROUP BY r.key
) AS s
