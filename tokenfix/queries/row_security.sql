-- Which of the given tables the current role reads only through row-level security, as
-- PostgreSQL decides it (check_enable_rls): RLS is on for the table, and the role is neither a
-- superuser nor BYPASSRLS (an attribute of the role itself, never inherited from another), nor
-- acting as the table's owner (membership with INHERIT counts) unless FORCE makes the owner
-- subject too. Catalogs only, no table is read. With row_security off, a query on such a
-- table fails ("query would be affected by row-level security policy") instead of filtering.
-- %(tables)s are quoted names, resolved on the search_path; a table that does not exist is
-- simply not listed. `hidden` holds the 1-based positions of the tables that are filtered.
SELECT current_user AS role,
       current_setting('row_security')::boolean AS row_security,
       coalesce(array_agg(t.position ORDER BY t.position)
                    FILTER (WHERE c.relrowsecurity
                              AND NOT (r.rolsuper OR r.rolbypassrls)
                              AND NOT (pg_has_role(c.relowner, 'USAGE')
                                       AND NOT c.relforcerowsecurity)),
                '{}') AS hidden
FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS t(name, position)
CROSS JOIN pg_roles AS r
LEFT JOIN pg_class AS c ON c.oid = to_regclass(t.name)
WHERE r.rolname = current_user
