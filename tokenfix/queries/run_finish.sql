-- Record how a writing run ended, with its counts.
UPDATE {schema}.runs
SET status = %(status)s,
    finished_at = now(),
    users_checked = %(users_checked)s,
    users_updated = %(users_updated)s,
    profiles_created = %(profiles_created)s,
    profiles_deleted = %(profiles_deleted)s,
    users_deferred = %(users_deferred)s,
    users_changed = %(users_changed)s,
    error = %(error)s
WHERE run_id = %(run_id)s
