-- What each role may do with one relation (table or view), counting PUBLIC's grants, its own
-- and those of roles it inherits, column grants included; and whether row-level security
-- binds it there. 'public' stands for PUBLIC, which never bypasses row-level security.
WITH rel AS (
    SELECT c.oid, c.relnamespace, c.relowner, c.relrowsecurity, c.relforcerowsecurity
    FROM pg_class AS c
    WHERE c.oid = to_regclass(%(relation)s)
)
SELECT who.name AS role,
       has_schema_privilege(who.name, rel.relnamespace, 'USAGE') AS schema_usage,
       has_any_column_privilege(who.name, rel.oid, 'SELECT') AS can_select,
       has_any_column_privilege(who.name, rel.oid, 'INSERT') AS can_insert,
       has_any_column_privilege(who.name, rel.oid, 'UPDATE') AS can_update,
       has_table_privilege(who.name, rel.oid, 'DELETE') AS can_delete,
       ARRAY(SELECT a.attname::text
             FROM pg_attribute AS a
             WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname = ANY(%(columns)s::text[])
               AND has_column_privilege(who.name, rel.oid, a.attnum, 'UPDATE')
             ORDER BY a.attnum) AS updatable_columns,
       ARRAY(SELECT a.attname::text
             FROM pg_attribute AS a
             WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND has_column_privilege(who.name, rel.oid, a.attnum, 'SELECT')
             ORDER BY a.attnum) AS readable_columns,
       rel.relrowsecurity AS rls_enabled,
       CASE WHEN who.name = 'public' THEN false
            ELSE EXISTS (SELECT FROM pg_roles AS r
                         WHERE r.rolname = who.name
                           AND (r.rolsuper OR r.rolbypassrls
                                OR (pg_has_role(r.oid, rel.relowner, 'USAGE')
                                    AND NOT rel.relforcerowsecurity)))
       END AS bypasses_rls
FROM rel, unnest(%(roles)s::text[]) AS who (name)
