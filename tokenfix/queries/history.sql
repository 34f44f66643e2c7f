-- The latest writing runs, newest first, with what each wrote, counted from its audit rows
-- (a failed run wrote its earlier batches). A run still marked running whose lease is gone,
-- expired or held by another run is abandoned: its process died without recording its end.
-- "Reverted by" names the latest completed revert of the whole run (not of one owner's rows,
-- `revert --user`) that restored something. %(run_id)s: that run alone (NULL: every run).
SELECT r.run_id, r.command, r.reverts_run_id,
       CASE WHEN r.status = 'running' AND NOT EXISTS (
                SELECT FROM {lease} AS l
                WHERE l.run_id = r.run_id AND l.expires_at > clock_timestamp())
            THEN 'abandoned' ELSE r.status END AS status,
       r.started_at, r.finished_at, r.db_role, r.tool_version, r.host, r.pid,
       r.users_checked, r.users_updated, r.profiles_created, r.profiles_deleted,
       r.users_deferred, r.users_changed, r.error, r.options ->> 'reason' AS reason,
       w.rows_written, w.rows_updated, w.rows_inserted, w.rows_deleted,
       (SELECT v.run_id FROM {runs} AS v
        WHERE v.reverts_run_id = r.run_id AND v.status = 'completed' AND NOT v.options ? 'user'
          AND EXISTS (SELECT FROM {changes} AS c WHERE c.run_id = v.run_id)
        ORDER BY v.started_at DESC LIMIT 1) AS reverted_by
FROM {runs} AS r
CROSS JOIN LATERAL (
    SELECT count(*) AS rows_written,
           count(*) FILTER (WHERE c.action IN ('update', 'restore')) AS rows_updated,
           count(*) FILTER (WHERE c.action = 'insert') AS rows_inserted,
           count(*) FILTER (WHERE c.action = 'delete') AS rows_deleted
    FROM {changes} AS c
    WHERE c.run_id = r.run_id
) AS w
WHERE %(run_id)s::uuid IS NULL OR r.run_id = %(run_id)s
ORDER BY r.started_at DESC, r.run_id
LIMIT %(limit)s
