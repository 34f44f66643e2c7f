-- Record the start of a writing run, with the balance side of the mapping it writes through.
INSERT INTO {schema}.runs (run_id, command, reverts_run_id, tool_version, host, pid, options,
                           balance_table, balance_key, mapping_hash)
VALUES (%(run_id)s, %(command)s, %(reverts_run_id)s, %(tool_version)s, %(host)s, %(pid)s,
        %(options)s, %(balance_table)s, %(balance_key)s, %(mapping_hash)s)
