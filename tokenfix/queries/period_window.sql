-- The earliest start of the selected owners' periods; an owner without a start makes it
-- unbounded, and so do no periods at all (every owner then has none). A ledger row before it
-- lies before its owner's period too, whoever the owner is, if that owner has a balance row
-- (docs/performance.md). Its own read of the periods, not the `periods` CTE: named twice,
-- that CTE would be materialized, and the planner, knowing nothing of its keys then, hashes
-- the ledger rows to probe them with the owners (spilling at 3 million rows) instead of the
-- reverse.
SELECT CASE WHEN coalesce(bool_or(period_start IS NULL), true) THEN '-infinity'::timestamptz
            ELSE min(period_start) END AS low
FROM (
{periods}
) AS periods
