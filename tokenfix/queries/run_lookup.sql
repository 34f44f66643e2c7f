-- One recorded run, and the latest completed revert of it that restored something.
SELECT r.run_id, r.command, r.status, r.started_at,
       (SELECT v.run_id FROM {runs} AS v
        WHERE v.reverts_run_id = r.run_id AND v.status = 'completed'
          AND EXISTS (SELECT FROM {changes} AS c WHERE c.run_id = v.run_id)
        ORDER BY v.started_at DESC LIMIT 1) AS reverted_by
FROM {runs} AS r
WHERE r.run_id = %(run_id)s
