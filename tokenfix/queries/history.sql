-- The latest writing runs, newest first, with how many rows each wrote.
SELECT r.run_id, r.command, r.reverts_run_id, r.status, r.started_at, r.finished_at,
       r.db_role, r.tool_version, r.host, r.pid,
       r.users_checked, r.users_updated, r.profiles_created, r.profiles_deleted,
       r.users_deferred, r.users_changed, r.error,
       (SELECT count(*) FROM {schema}.changes AS c WHERE c.run_id = r.run_id) AS rows_written,
       (SELECT v.run_id FROM {schema}.runs AS v
        WHERE v.reverts_run_id = r.run_id AND v.status = 'completed'
        ORDER BY v.started_at DESC LIMIT 1) AS reverted_by
FROM {schema}.runs AS r
ORDER BY r.started_at DESC, r.run_id
LIMIT %(limit)s
