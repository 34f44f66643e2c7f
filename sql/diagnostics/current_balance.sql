-- The cached balance: what the app shows the user. No row means the profile is missing
-- (write-up: "Does user_profiles row exist? (create if missing)").
--
--   psql -v user_id=<uuid> -f sql/diagnostics/current_balance.sql
\set ON_ERROR_STOP on
\if :{?user_id}
\else
  \echo 'usage: psql -v user_id=<uuid> -f sql/diagnostics/current_balance.sql'
  \quit
\endif

SELECT vibe_assistant_tokens_remaining,
       vibe_assistant_tokens_used,
       created_at,
       updated_at
FROM user_profiles
WHERE user_id = :'user_id';
