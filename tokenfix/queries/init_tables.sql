-- Every table an app could keep balances or a ledger in (not the system's, not tokenfix's own
-- audit schema), with its columns, single-column unique keys and foreign keys, for `init`.
SELECT n.nspname AS schema, c.relname AS name,
       (SELECT c.reltuples::bigint) AS estimated_rows,
       ARRAY(SELECT a.attname::text FROM pg_attribute AS a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum) AS columns,
       ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum) AS types,
       ARRAY(SELECT a.attnotnull AND NOT a.atthasdef AND a.attidentity = ''
                    AND a.attgenerated = ''
             FROM pg_attribute AS a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum) AS required,
       ARRAY(SELECT a.attname::text FROM pg_index AS i
             JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
               AND i.indpred IS NULL
             ORDER BY i.indisprimary DESC) AS unique_keys,
       ARRAY(SELECT format('%%s=%%s.%%s', a.attname, fn.nspname || '.' || ft.relname, fa.attname)
             FROM pg_constraint AS f
             JOIN pg_attribute AS a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]
             JOIN pg_class AS ft ON ft.oid = f.confrelid
             JOIN pg_namespace AS fn ON fn.oid = ft.relnamespace
             JOIN pg_attribute AS fa ON fa.attrelid = f.confrelid AND fa.attnum = f.confkey[1]
             WHERE f.conrelid = c.oid AND f.contype = 'f'
               AND array_length(f.conkey, 1) = 1) AS foreign_keys
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', %(audit_schema)s)
  AND n.nspname NOT LIKE 'pg\_%%'
  AND n.nspname NOT IN ('auth', 'storage', 'realtime', 'supabase_functions', 'extensions',
                        'graphql', 'graphql_public', 'pgsodium', 'vault', 'net', 'cron')
ORDER BY n.nspname = 'public' DESC, n.nspname, c.relname
