-- One owner's support adjustments as the audit trail knows them (grant, deduct, reconcile
-- --direction ledger), newest first, with the revert that took each back, if any.
SELECT c.run_id, r.command, c.changed_at, c.adjustment ->> 'kind' AS kind,
       c.adjustment ->> 'amount' AS amount, c.adjustment ->> 'reason' AS reason,
       c.adjustment ->> 'idempotency_key' AS idempotency_key,
       c.adjustment ->> 'ledger' AS ledger,
       (SELECT v.run_id FROM {runs} AS v
        WHERE v.reverts_run_id = c.run_id AND v.status = 'completed'
          AND EXISTS (SELECT FROM {changes} AS x WHERE x.run_id = v.run_id AND x.key = c.key)
        ORDER BY v.started_at DESC LIMIT 1) AS reverted_by
FROM {changes} AS c
JOIN {runs} AS r ON r.run_id = c.run_id
WHERE c.key = %(key)s AND c.adjustment IS NOT NULL AND r.reverts_run_id IS NULL
ORDER BY c.changed_at DESC, c.run_id
LIMIT %(limit)s
