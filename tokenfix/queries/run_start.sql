-- Record the start of a writing run.
INSERT INTO {schema}.runs (run_id, command, reverts_run_id, tool_version, host, pid, options)
VALUES (%(run_id)s, %(command)s, %(reverts_run_id)s, %(tool_version)s, %(host)s, %(pid)s,
        %(options)s)
