-- The roles of docs/doctor.md present in this cluster: anon and authenticated (probed) and
-- service_role (shown for information); whether each bypasses row-level security, and
-- whether the tool may SET ROLE to it for a probe.
SELECT r.rolname::text AS name,
       r.rolsuper OR r.rolbypassrls AS bypasses_rls,
       pg_has_role(current_user, r.oid, 'MEMBER') AS can_set_role
FROM pg_roles AS r
WHERE r.rolname IN ('anon', 'authenticated', 'service_role')
ORDER BY array_position(ARRAY['anon', 'authenticated', 'service_role'], r.rolname::text)
