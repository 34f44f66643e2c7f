-- A fix tried inside a savepoint that is always rolled back: it must take its locks at once
-- or not at all (never queue the app behind it), and finish quickly.
SELECT set_config('lock_timeout', '100ms', true),
       set_config('statement_timeout', '5s', true)
