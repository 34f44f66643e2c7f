-- Who and where we are: server version, role, RLS bypass, standby, the server's own port
-- (differs from the port we dialled when a pooler or proxy sits in between), TLS in use.
SELECT current_setting('server_version') AS server_version,
       current_user AS role,
       r.rolsuper AS superuser,
       r.rolsuper OR r.rolbypassrls AS bypasses_rls,
       pg_is_in_recovery() AS standby,
       inet_server_port() AS server_port,
       current_database() AS database,
       coalesce((SELECT s.ssl FROM pg_stat_ssl AS s WHERE s.pid = pg_backend_pid()), false) AS tls,
       (SELECT s.version FROM pg_stat_ssl AS s WHERE s.pid = pg_backend_pid()) AS tls_version
FROM pg_roles AS r
WHERE r.rolname = current_user
