-- Not a statement: the select-list items of an audit row's written columns, for every audit
-- layout (alias c for the changes row), included by the statements that read them. before:
-- as the run found them, after: as it left them; NULL means "no row" (a created or a deleted
-- balance row). Rows of audit layouts before 2 hold the two default columns, named here
-- %(remaining)s and %(used)s.
       CASE WHEN c.key IS NOT NULL THEN c.before
            WHEN c.action = 'insert' THEN NULL
            ELSE jsonb_build_object(%(remaining)s::text, c.before_remaining,
                                    %(used)s::text, c.before_used) END AS before,
       CASE WHEN c.key IS NOT NULL THEN c.after
            WHEN c.action = 'delete' THEN NULL
            ELSE jsonb_build_object(%(remaining)s::text, c.after_remaining,
                                    %(used)s::text, c.after_used) END AS after,
