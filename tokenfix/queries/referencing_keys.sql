-- Foreign keys of other tables (or of the table itself) that point at the profiles table:
-- a profile row they reference must not be deleted by a revert (ON DELETE CASCADE would take
-- the app's rows with it). `visible`: whether this role sees every row of the referencing
-- table (it may read it, and row-level security does not filter it), so that "no row
-- references it" can be trusted.
SELECT n.nspname AS ref_schema, t.relname AS ref_table,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (attnum, i)
             JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS ref_columns,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (attnum, i)
             JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS key_columns,
       has_table_privilege(t.oid, 'SELECT')
           AND (NOT t.relrowsecurity
                OR (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles AS r
                    WHERE r.rolname = current_user)
                OR (pg_has_role(t.relowner, 'USAGE') AND NOT t.relforcerowsecurity))
           AS visible
FROM pg_constraint AS c
JOIN pg_class AS t ON t.oid = c.conrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE c.contype = 'f' AND c.confrelid = to_regclass(%(table)s)
ORDER BY n.nspname, t.relname, c.conname
