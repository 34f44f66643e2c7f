-- Synthetic ledger for the benchmark: %(users)s users, %(rows)s rows, realistic proportions.
-- Deterministic users (md5 of their number); row contents from a seeded random().
DROP TABLE IF EXISTS bench_users;
CREATE TABLE bench_users AS
SELECT n, md5('tokenfix-bench-user-' || n)::uuid AS user_id
FROM generate_series(1, %(users)s) AS n;
CREATE UNIQUE INDEX ON bench_users (n);
ANALYZE bench_users;

SELECT setseed(0.4242);

INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, success, created_at)
SELECT u.user_id,
       CASE WHEN r.action < 0.60 THEN 'chat_conversation'
            WHEN r.action < 0.75 THEN 'image_generation'
            WHEN r.action < 0.85 THEN 'code_review'
            WHEN r.action < 0.95 THEN 'summarize'
            WHEN r.action < 0.98 THEN 'admin_grant'
            ELSE 'admin_deduct' END,
       CASE WHEN r.action >= 0.95 OR r.model < 0.10 THEN NULL
            WHEN r.model < 0.40 THEN 'gpt-4'
            WHEN r.model < 0.70 THEN 'gpt-4o-mini'
            ELSE 'claude-3' END,
       CASE WHEN r.tokens < 0.003 THEN NULL
            WHEN r.tokens < 0.005 THEN -1 - (r.tokens * 10000)::int
            WHEN r.tokens < 0.015 THEN 0
            ELSE 1 + (r.tokens * 2000)::int END,
       CASE WHEN r.outcome < 0.005 THEN NULL WHEN r.outcome < 0.05 THEN false ELSE true END,
       now() - interval '181 days' + r.moment * interval '180 days'
FROM (
    SELECT 1 + floor(random() * %(users)s)::int AS user_number,
           random() AS action, random() AS model, random() AS tokens, random() AS outcome,
           random() AS moment
    FROM generate_series(1, %(rows)s)
) AS r
JOIN bench_users AS u ON u.n = r.user_number;

-- 1%% of users were active in the last hour (three recent charges each, 10 to 50 minutes ago).
INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, success, created_at)
SELECT u.user_id, 'chat_conversation', 'gpt-4', 100 + k, true,
       now() - interval '10 minutes' - k * interval '13 minutes'
FROM bench_users AS u, generate_series(0, 2) AS k
WHERE u.n %% 100 = 0;

INSERT INTO ai_action_token_overrides (action_type, model_used, token_cost, is_active, valid_from, valid_until)
VALUES ('chat_conversation', NULL, 30, true, NULL, NULL),
       ('chat_conversation', 'gpt-4', 50, true, now() - interval '120 days', NULL),
       ('chat_conversation', 'gpt-4', 45, true, now() - interval '300 days', now() - interval '120 days'),
       ('image_generation', NULL, 200, true, now() - interval '90 days', now() - interval '30 days'),
       ('image_generation', 'gpt-4', 260, true, now() - interval '30 days', NULL),
       ('code_review', NULL, 80, false, NULL, NULL),
       ('code_review', 'claude-3', 70, true, NULL, now() - interval '60 days'),
       ('summarize', 'gpt-4o-mini', 12, true, now() - interval '45 days', NULL),
       ('admin_grant', NULL, 1, true, NULL, NULL);

-- 99.5%% of users have a profile row (set to the ledger's values next).
INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining, vibe_assistant_tokens_used,
                           created_at, updated_at)
SELECT user_id, 0, 0, now() - interval '200 days', now() - interval '1 day'
FROM bench_users
WHERE n %% 200 <> 0;
