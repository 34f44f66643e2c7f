-- Who holds the writer lease, for the "locked out" message.
SELECT command, host, pid, started_at, expires_at, run_id,
       greatest(0, extract(epoch FROM expires_at - clock_timestamp()))::int AS expires_in_seconds
FROM {lease}
WHERE name = 'writer'
