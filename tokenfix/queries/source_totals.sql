-- One ledger source summed per owner: what its rows do to remaining, and the charges (used).
SELECT r.key,
       sum(CASE r.kind WHEN 1 THEN r.amount WHEN 2 THEN -r.amount WHEN 3 THEN -{effective} END)
           AS remaining_delta,
       sum({effective}) FILTER (WHERE r.kind = 3) AS charged
FROM ({rows}) AS r
GROUP BY r.key
