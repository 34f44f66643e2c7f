-- Say which balance table the run holding the writer lease writes, for runs of other audit
-- schemas (one writer per balance table): a row beside the 'writer' row, named by the table's
-- oid (however its name is written), with the same holder, renewed and released with it.
INSERT INTO {lease} AS l (name, holder, run_id, command, host, pid, started_at, expires_at)
VALUES ('table ' || %(table)s::text::regclass::oid, %(holder)s, %(run_id)s, %(command)s,
        %(host)s, %(pid)s, %(started_at)s, clock_timestamp() + %(ttl)s::interval)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    run_id = excluded.run_id,
    command = excluded.command,
    host = excluded.host,
    pid = excluded.pid,
    started_at = excluded.started_at,
    expires_at = excluded.expires_at
