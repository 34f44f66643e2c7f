-- The incident write-up's first check, counted by docs/balance-model.md row class: how many ledger rows the
-- user has, how many tokens they log, and how many rows cannot move the balance.
-- (The write-up counted `success = false` rows as failed even when tokens_used was NULL or
-- negative; here such rows are `invalid`, as tokenfix counts them, so the numbers agree.)
--
--   psql -v user_id=<uuid> -f sql/diagnostics/record_counts.sql
\set ON_ERROR_STOP on
\if :{?user_id}
\else
  \echo 'usage: psql -v user_id=<uuid> -f sql/diagnostics/record_counts.sql'
  \quit
\endif

SELECT count(*) AS total_records,
       coalesce(sum(tokens_used), 0) AS total_tokens_logged,
       count(*) FILTER (WHERE success = false AND tokens_used >= 0) AS failed_records,
       count(*) FILTER (WHERE success AND tokens_used = 0) AS zero_token_records,
       count(*) FILTER (WHERE tokens_used IS NULL OR tokens_used < 0 OR success IS NULL)
           AS invalid_records
FROM token_usage
WHERE user_id = :'user_id';
