-- The app's balance write as PostgREST sends it (PATCH ...?key=eq.X): each balance column set
-- to one more than it holds. Runs as an API role in a savepoint that is always rolled back.
UPDATE {relation} SET {assignments} WHERE {key} = %(key)s
