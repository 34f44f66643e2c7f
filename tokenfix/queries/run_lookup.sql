-- One recorded run (as jsonb, so that any audit layout reads alike), and the latest completed
-- revert of the whole run (not `revert --user`) that restored something.
SELECT to_jsonb(r.*) AS run,
       (SELECT v.run_id FROM {runs} AS v
        WHERE v.reverts_run_id = r.run_id AND v.status = 'completed' AND NOT v.options ? 'user'
          AND EXISTS (SELECT FROM {changes} AS c WHERE c.run_id = v.run_id)
        ORDER BY v.started_at DESC LIMIT 1) AS reverted_by
FROM {runs} AS r
WHERE r.run_id = %(run_id)s
