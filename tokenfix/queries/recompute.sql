-- One batch's owners recomputed from the ledger (by each source's key index), after their
-- balance rows were locked, with whether each has ledger rows inside the settle window.
SELECT b.key::text AS key, b.has_profile, b.current_remaining, b.current_used,
       b.expected_remaining, b.expected_used, b.drift_remaining, b.drift_used, b.attention,
       b.key = ANY({recent}) AS recent, b.row_id
FROM (
{balances}
) AS b
