-- A probe's limits and the request context PostgREST gives the app, LOCAL to the probe's
-- savepoint: the JWT claims in both forms PostgREST sets (request.jwt.claims as JSON, and the
-- legacy request.jwt.claim.sub / .role that older auth.uid() definitions read). The idle
-- timeout is the transaction's own (TOKENFIX_IDLE_TIMEOUT, set by db.transaction).
SELECT set_config('lock_timeout', %(lock_timeout)s, true),
       set_config('statement_timeout', %(statement_timeout)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.jwt.claim.sub', %(sub)s, true),
       set_config('request.jwt.claim.role', %(role)s, true)
