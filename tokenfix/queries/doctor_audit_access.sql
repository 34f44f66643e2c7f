-- Whether the current role can keep the audit trail: create its schema on the first write,
-- or, once it exists, use it and write its tables.
WITH audit AS (
    SELECT to_regnamespace(%(schema)s) AS schema_oid
)
SELECT has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
       audit.schema_oid IS NOT NULL AS schema_exists,
       coalesce(has_schema_privilege(audit.schema_oid, 'USAGE'), false) AS schema_usage,
       CASE WHEN has_schema_privilege(audit.schema_oid, 'USAGE') THEN
           (SELECT coalesce(bool_and(coalesce(has_table_privilege(to_regclass(t.name),
                                                                  'SELECT,INSERT,UPDATE,DELETE'),
                                              false)), false)
            FROM unnest(%(tables)s::text[]) AS t (name))
       ELSE false END AS tables_writable
FROM audit
