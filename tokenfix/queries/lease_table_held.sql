-- A live lease of another audit schema's run on the balance table we are about to write.
SELECT command, host, pid, started_at, run_id
FROM {lease}
WHERE name = 'table ' || %(table)s::text::regclass::oid
  AND expires_at > clock_timestamp()
