-- A real profile row to run the RLS probe against (any one will do).
SELECT p.user_id FROM {profiles} AS p LIMIT 1
