-- Lock a batch's profile rows in user_id order (one global order: no deadlock between our
-- batches, and the app waits for at most one batch). The ledger is read after this, in a
-- fresh statement, so it includes everything the app committed before we got the locks.
SELECT p.user_id
FROM {profiles} AS p
WHERE p.user_id = ANY(%(user_ids)s)
ORDER BY p.user_id
FOR UPDATE
