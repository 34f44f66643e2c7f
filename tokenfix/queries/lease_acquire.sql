-- Take the writer lease if it is free or expired; returns a row only when we got it.
INSERT INTO {lease} AS l (name, holder, run_id, command, host, pid, started_at, expires_at)
VALUES ('writer', %(holder)s, %(run_id)s, %(command)s, %(host)s, %(pid)s, %(started_at)s,
        clock_timestamp() + %(ttl)s::interval)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    run_id = excluded.run_id,
    command = excluded.command,
    host = excluded.host,
    pid = excluded.pid,
    started_at = excluded.started_at,
    expires_at = excluded.expires_at
WHERE l.expires_at < clock_timestamp()
RETURNING l.holder
