-- What the balance should be, from the whole ledger, under docs/balance-model.md with the default names:
-- failed, zero-token and invalid rows count for nothing; grants add to remaining; deducts
-- take from it; every other row is a charge priced by its best matching override
-- (model-specific first, then the latest valid_from, then the highest id), else tokens_used.
-- Shown beside the cached row, with the drift (cached - expected).
--
--   psql -v user_id=<uuid> -f sql/diagnostics/expected_balance.sql
-- optional:
--   -v starting_balance=N                         tokens every user starts with (default 0)
--   -v grant_actions='{admin_grant,purchase}'     grant action types (default {admin_grant})
--   -v deduct_actions='{admin_deduct}'            deduct action types (default {admin_deduct})
--
-- sql/scripts/fix-user-token-balance.sql includes this file with `capture` set, to read the
-- numbers into psql variables (tf_expected_remaining, tf_expected_used, ...) instead.
\set ON_ERROR_STOP on
\if :{?user_id}
\else
  \echo 'usage: psql -v user_id=<uuid> -f sql/diagnostics/expected_balance.sql'
  \quit
\endif
\if :{?starting_balance} \else \set starting_balance 0 \endif
\if :{?grant_actions} \else \set grant_actions '{admin_grant}' \endif
\if :{?deduct_actions} \else \set deduct_actions '{admin_deduct}' \endif
\if :{?capture} \else \set capture false \endif

-- No overrides table means no overrides; a table without valid_from/valid_until means
-- unbounded windows (read through to_jsonb, so a missing column is simply NULL).
SELECT to_regclass('ai_action_token_overrides') IS NOT NULL AS tf_has_overrides \gset
\if :tf_has_overrides
  \set tf_overrides '(SELECT o.id, o.action_type, o.model_used, o.token_cost, o.is_active, (to_jsonb(o) ->> ''valid_from'')::timestamptz AS valid_from, (to_jsonb(o) ->> ''valid_until'')::timestamptz AS valid_until FROM ai_action_token_overrides AS o)'
\else
  \set tf_overrides '(SELECT NULL::bigint AS id, NULL::text AS action_type, NULL::text AS model_used, NULL::integer AS token_cost, false AS is_active, NULL::timestamptz AS valid_from, NULL::timestamptz AS valid_until WHERE false)'
\endif

WITH ledger AS (
    SELECT u.*,
           CASE
               WHEN u.tokens_used IS NULL OR u.tokens_used < 0 OR u.success IS NULL THEN 'invalid'
               WHEN NOT u.success THEN 'failed'
               WHEN u.tokens_used = 0 THEN 'zero'
               WHEN u.action_type = ANY(:'grant_actions'::text[]) THEN 'grant'
               WHEN u.action_type = ANY(:'deduct_actions'::text[]) THEN 'deduct'
               ELSE 'charge'
           END AS row_class
    FROM token_usage AS u
    WHERE u.user_id = :'user_id'
), priced AS (
    SELECT l.row_class,
           l.tokens_used,
           coalesce(best.token_cost, l.tokens_used) AS effective
    FROM ledger AS l
    LEFT JOIN LATERAL (
        SELECT o.token_cost
        FROM :tf_overrides AS o
        WHERE l.row_class = 'charge'
          AND o.is_active
          AND o.token_cost IS NOT NULL
          AND o.action_type = l.action_type
          AND (o.model_used IS NULL OR o.model_used = l.model_used)
          AND (o.valid_from IS NULL OR l.created_at >= o.valid_from)
          AND (o.valid_until IS NULL OR l.created_at < o.valid_until)
        ORDER BY o.model_used IS NOT NULL DESC, o.valid_from DESC NULLS LAST, o.id DESC
        LIMIT 1
    ) AS best ON true
), expected AS (
    SELECT :'starting_balance'::bigint
           + coalesce(sum(tokens_used) FILTER (WHERE row_class = 'grant'), 0)
           - coalesce(sum(tokens_used) FILTER (WHERE row_class = 'deduct'), 0)
           - coalesce(sum(effective) FILTER (WHERE row_class = 'charge'), 0) AS expected_remaining,
           coalesce(sum(effective) FILTER (WHERE row_class = 'charge'), 0) AS expected_used,
           count(*) AS ledger_rows
    FROM priced
)
SELECT :'user_id'::uuid AS user_id,
       p.user_id IS NOT NULL AS has_profile,
       e.ledger_rows,
       p.vibe_assistant_tokens_remaining AS cached_remaining,
       p.vibe_assistant_tokens_used AS cached_used,
       e.expected_remaining,
       e.expected_used,
       p.vibe_assistant_tokens_remaining - e.expected_remaining AS drift_remaining,
       p.vibe_assistant_tokens_used - e.expected_used AS drift_used
FROM expected AS e
LEFT JOIN user_profiles AS p ON p.user_id = :'user_id'
\if :capture
\gset tf_
\else
\g
\endif
