-- A probe's limits and the request context today's PostgREST (v10 and later, every Supabase
-- project) gives the app, LOCAL to the probe's savepoint: the access token's claims as JSON in
-- request.jwt.claims, the HTTP method, path, headers and cookies. Never the legacy
-- request.jwt.claim.* settings, which PostgREST no longer sets: a guard that reads them must
-- see what the real API gives it (nothing). The idle timeout is the transaction's own
-- (TOKENFIX_IDLE_TIMEOUT, set by db.transaction).
SELECT set_config('lock_timeout', %(lock_timeout)s, true),
       set_config('statement_timeout', %(statement_timeout)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.method', %(method)s, true),
       set_config('request.path', %(path)s, true),
       set_config('request.headers', %(headers)s, true),
       set_config('request.cookies', %(cookies)s, true)
