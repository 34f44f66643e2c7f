-- Two balance rows to probe with (any two will do): the first is the probe user's own, the
-- second another owner's. The subject is the owner's JWT `sub`, as text.
SELECT {key}, ({subject})::text, {columns} FROM {table} LIMIT 2
