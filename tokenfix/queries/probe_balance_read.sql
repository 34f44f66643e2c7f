-- What a balance row holds now: read back by the tool inside the probe's savepoint.
SELECT {columns} FROM {table} WHERE {key} = %(key)s
