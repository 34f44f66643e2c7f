-- What one row's column holds now: read back by the tool inside the probe's savepoint.
SELECT {column} FROM {table} WHERE {id} = %(id)s
