-- 1%% of caches wrong; then the indexes `tokenfix doctor` recommends, and fresh statistics.
UPDATE user_profiles AS p
SET vibe_assistant_tokens_remaining = p.vibe_assistant_tokens_remaining + 100 + u.n %% 500
FROM bench_users AS u
WHERE u.user_id = p.user_id AND u.n %% 100 = 50;

CREATE INDEX IF NOT EXISTS token_usage_user_id_idx ON token_usage (user_id);
CREATE INDEX IF NOT EXISTS token_usage_created_at_idx ON token_usage (created_at);
