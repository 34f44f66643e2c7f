-- One ledger source summed per owner: what its rows do to remaining, and the charges (used);
-- beside them, in the same aggregate, the sums the causes of a drift are tested against
-- (docs/monitoring.md): the grants, the charges at their raw amount (the override difference
-- is the charges' total minus that), the failed charges raw and priced, and the oldest row's
-- time (`first_at`; NULL when the balance side has no created_at). The deducts follow from
-- these (granted - charged - remaining_delta): one aggregate less per row.
SELECT r.key,
       sum(CASE r.kind WHEN 1 THEN r.amount WHEN 2 THEN -r.amount WHEN 3 THEN -{effective} END)
           AS remaining_delta,
       sum({effective}) FILTER (WHERE r.kind = 3) AS charged,
       sum(r.amount) FILTER (WHERE r.kind = 1) AS granted,
       sum(r.amount) FILTER (WHERE r.kind = 3) AS raw_charged,
       sum(r.amount) FILTER (WHERE r.kind = 4) AS failed,
       sum({effective}) FILTER (WHERE r.kind = 4) AS failed_priced,
       {first_at} AS first_at
FROM ({rows}) AS r
GROUP BY r.key
