-- The caller's own balance row deleted as PostgREST would (DELETE ...?key=eq.X), before the
-- probe inserts it again. Runs as an API role in a savepoint that is always rolled back.
DELETE FROM {relation} WHERE {key} = %(key)s
