-- Ledger rows written before the user's profile row existed: the app had no row to update,
-- so these never reached the cached balance (write-up: "Records before user_profiles row was
-- created - Won't update").
--
--   psql -v user_id=<uuid> -f sql/diagnostics/records_before_profile.sql
\set ON_ERROR_STOP on
\if :{?user_id}
\else
  \echo 'usage: psql -v user_id=<uuid> -f sql/diagnostics/records_before_profile.sql'
  \quit
\endif

SELECT count(u.*) AS records_before_profile,
       coalesce(sum(u.tokens_used) FILTER (WHERE u.success AND u.tokens_used > 0), 0)
           AS tokens_before_profile,
       p.created_at AS profile_created_at
FROM user_profiles AS p
LEFT JOIN token_usage AS u ON u.user_id = p.user_id AND u.created_at < p.created_at
WHERE p.user_id = :'user_id'
GROUP BY p.created_at;
