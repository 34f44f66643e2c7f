-- The server's deadlock_timeout (ms) and whether this role may set its own: a superuser, or
-- a role granted SET ON PARAMETER deadlock_timeout (PostgreSQL 15+).
SELECT (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout'),
       current_setting('is_superuser') = 'on'
           OR has_parameter_privilege('deadlock_timeout', 'SET')
