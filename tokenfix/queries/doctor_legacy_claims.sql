-- Trigger functions on the checked tables, functions their policies call, and the policies'
-- own expressions, that read the legacy per-claim settings (request.jwt.claim.role, ...),
-- which PostgREST 10 and later never sets: which settings, through what, and whether they
-- also read request.jwt.claims (a fallback, as Supabase's own auth.uid() has). `in_trigger`:
-- read by a trigger (whose IF on a NULL setting lets the write through), not only by policies
-- (whose NULL comparison usually lets nothing through).
WITH rel AS (
    SELECT to_regclass(r.name) AS oid FROM unnest(%(relations)s::text[]) AS r (name)
), readers AS (
    SELECT t.tgfoid AS function, format('trigger %%s on %%s', t.tgname, t.tgrelid::regclass) AS via,
           true AS in_trigger
    FROM pg_trigger AS t JOIN rel ON t.tgrelid = rel.oid
    WHERE NOT t.tgisinternal
    UNION
    SELECT d.refobjid, format('policy %%s on %%s', p.polname, p.polrelid::regclass), false
    FROM pg_policy AS p
    JOIN rel ON p.polrelid = rel.oid
    JOIN pg_depend AS d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                       AND d.refclassid = 'pg_proc'::regclass
), texts AS (
    SELECT f.oid::regprocedure::text AS reader, string_agg(DISTINCT r.via, ', ') AS via,
           f.prosrc AS body, bool_or(r.in_trigger) AS in_trigger
    FROM readers AS r JOIN pg_proc AS f ON f.oid = r.function
    GROUP BY f.oid, f.prosrc
    UNION ALL
    SELECT format('policy %%s', p.polname), format('on %%s', p.polrelid::regclass),
           concat_ws(' ', pg_get_expr(p.polqual, p.polrelid),
                     pg_get_expr(p.polwithcheck, p.polrelid)), false
    FROM pg_policy AS p JOIN rel ON p.polrelid = rel.oid
)
SELECT reader, via,
       ARRAY(SELECT DISTINCT 'request.jwt.claim.' || m[1]
             FROM regexp_matches(body, 'request\.jwt\.claim\.([A-Za-z_]+)', 'g') AS m
             ORDER BY 1) AS settings,
       body ~ 'request\.jwt\.claims' AS reads_claims, in_trigger
FROM texts
WHERE body ~ 'request\.jwt\.claim\.'
ORDER BY reader
