-- Runbook fallback: reconcile ONE user's cached balance with nothing but psql.
-- Same docs/balance-model.md model as `tokenfix reconcile` (default names), in one transaction:
-- lock the profile row, recompute from the whole ledger, print before/expected, update.
--
--   psql -v user_id=<uuid> -f sql/scripts/fix-user-token-balance.sql
-- optional:
--   -v starting_balance=N        tokens every user starts with (default 0)
--   -v grant_actions='{admin_grant,purchase}'  -v deduct_actions='{admin_deduct}'
--   -v create_missing=1          insert the profile row when the user has none
--
-- Prefer `tokenfix reconcile USER_ID` where the tool is installed: it also defers users with
-- ledger rows the app may not have applied yet (--settle) and records an audit trail, which
-- this script does not. Run this one when the user is idle.
\set ON_ERROR_STOP on
\if :{?user_id}
\else
  \echo 'usage: psql -v user_id=<uuid> -f sql/scripts/fix-user-token-balance.sql'
  \quit
\endif
\if :{?create_missing} \else \set create_missing 0 \endif

BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

-- Lock the profile row first: the app's balance updates wait for us, and the ledger read
-- that follows sees every charge the app committed before we got the lock.
SELECT count(*) AS tf_locked
FROM (SELECT 1 FROM user_profiles WHERE user_id = :'user_id' FOR UPDATE) AS locked \gset

\set capture true
\ir ../diagnostics/expected_balance.sql

\echo user :user_id
\echo cached   remaining :tf_cached_remaining used :tf_cached_used
\echo expected remaining :tf_expected_remaining used :tf_expected_used

\if :tf_has_profile
  SELECT :'tf_drift_remaining'::bigint = 0 AND :'tf_drift_used'::bigint = 0 AS tf_in_step \gset
  \if :tf_in_step
    \echo 'The cached balance already matches the ledger: nothing written.'
  \else
    UPDATE user_profiles
    SET vibe_assistant_tokens_remaining = :'tf_expected_remaining'::bigint,
        vibe_assistant_tokens_used = :'tf_expected_used'::bigint,
        updated_at = now()
    WHERE user_id = :'user_id'
      AND vibe_assistant_tokens_remaining = :'tf_cached_remaining'::bigint
      AND vibe_assistant_tokens_used = :'tf_cached_used'::bigint;
    \echo 'Updated the cached balance to the expected values.'
  \endif
\elif :create_missing
  INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining, vibe_assistant_tokens_used)
  VALUES (:'user_id', :'tf_expected_remaining'::bigint, :'tf_expected_used'::bigint);
  \echo 'Created the missing profile row with the expected values.'
\else
  \echo 'No user_profiles row: nothing written. Re-run with -v create_missing=1 to create it.'
\endif

COMMIT;
