-- Triggers on one relation whose function calls outside the database (dblink, the http
-- extension, pg_net, Supabase's database webhooks) or is written in an untrusted language
-- that could: a probe would fire them, and no rollback takes back a request once it is sent.
-- One call deep: the trigger function's own body, and the functions whose name it calls.
WITH fired AS (
    SELECT t.tgname::text AS trigger_name,
           p.oid,
           p.oid::regprocedure::text AS function,
           p.proname::text AS name,
           p.prosrc AS body,
           l.lanname::text AS language,
           l.lanpltrusted AS trusted
    FROM pg_trigger AS t
    JOIN pg_proc AS p ON p.oid = t.tgfoid
    JOIN pg_language AS l ON l.oid = p.prolang
    WHERE t.tgrelid = to_regclass(%(relation)s) AND NOT t.tgisinternal
)
SELECT f.trigger_name, f.function
FROM fired AS f
WHERE f.body ~* %(outbound)s
   OR f.name ~* %(outbound_name)s
   OR (NOT f.trusted AND f.language NOT IN ('c', 'internal'))
   OR EXISTS (
       SELECT FROM pg_proc AS q
       JOIN pg_namespace AS n ON n.oid = q.pronamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
         AND q.oid <> f.oid
         AND (q.prosrc ~* %(outbound)s OR q.proname ~* %(outbound_name)s)
         AND position(lower(q.proname::text) || '('
                      IN regexp_replace(lower(f.body), '\s+\(', '(', 'g')) > 0)
ORDER BY f.trigger_name
