-- A support adjustment already booked under this idempotency key (the newest), with the
-- latest revert of its run, if any.
SELECT c.run_id, c.key, c.adjustment,
       (SELECT v.run_id FROM {runs} AS v
        WHERE v.reverts_run_id = c.run_id AND v.status = 'completed'
        ORDER BY v.started_at DESC LIMIT 1) AS reverted_by
FROM {changes} AS c
WHERE c.adjustment IS NOT NULL
  AND c.adjustment ->> 'idempotency_key' = %(idempotency_key)s
  AND c.adjustment ->> 'reverted' IS NULL  -- a revert's own row names the key too
ORDER BY c.changed_at DESC
LIMIT 1
