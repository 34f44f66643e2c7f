-- One recorded run, and the latest completed run that reverted it.
SELECT r.run_id, r.command, r.status, r.started_at,
       (SELECT v.run_id FROM {runs} AS v
        WHERE v.reverts_run_id = r.run_id AND v.status = 'completed'
        ORDER BY v.started_at DESC LIMIT 1) AS reverted_by
FROM {runs} AS r
WHERE r.run_id = %(run_id)s
