-- Supabase's Data API roles: may each UPDATE the balance columns (a grant on the table or on
-- just the column counts), do they bypass RLS, and may we SET ROLE to them for the probe.
SELECT r.rolname AS role,
       r.rolsuper OR r.rolbypassrls AS bypasses_rls,
       EXISTS (SELECT FROM unnest(%(columns)s::text[]) AS c (name)
               WHERE has_column_privilege(r.oid, to_regclass(%(table)s), c.name, 'UPDATE'))
           AS may_update_balance,
       pg_has_role(current_user, r.oid, 'MEMBER') AS can_set_role
FROM pg_roles AS r
WHERE r.rolname IN ('anon', 'authenticated', 'service_role')
ORDER BY array_position(ARRAY['anon', 'authenticated', 'service_role'], r.rolname::text)
