-- One batch's users recomputed from the ledger (by the user_id index), after their profile
-- rows were locked, with whether each has ledger rows inside the settle window.
SELECT b.*, b.user_id = ANY({recent_users}) AS recent
FROM (
{balances}
) AS b
