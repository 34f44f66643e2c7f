-- Roles that write a table whatever its policies say: superusers, BYPASSRLS roles and, unless
-- row-level security is forced, the table's owner. Shown for information (docs/doctor.md).
SELECT r.rolname::text AS name,
       CASE WHEN r.rolsuper THEN 'superuser'
            WHEN r.rolbypassrls THEN 'BYPASSRLS'
            ELSE 'owner' END AS why
FROM pg_roles AS r, pg_class AS c
WHERE c.oid = to_regclass(%(relation)s)
  AND r.rolname !~ '^pg_'
  AND r.rolname NOT IN ('anon', 'authenticated', 'service_role')
  AND (r.rolsuper OR r.rolbypassrls OR (r.oid = c.relowner AND NOT c.relforcerowsecurity))
ORDER BY r.rolname
