-- The server's deadlock_timeout (ms) and whether this role may set its own: before
-- PostgreSQL 15 only a superuser may.
SELECT (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout'),
       current_setting('is_superuser') = 'on'
