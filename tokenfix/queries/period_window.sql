-- The earliest start of the selected owners' periods (the `periods` CTE); an owner without a
-- start makes it unbounded. A ledger row before it lies before its owner's period too, whoever
-- the owner is (docs/performance.md).
SELECT CASE WHEN bool_or(period_start IS NULL) THEN '-infinity'::timestamptz
            ELSE min(period_start) END AS low
FROM periods
