-- The night of an incident (docs/monitoring.md): 10%% of owners drifting, not 1%%. The caches are saved
-- first (incident_end.sql puts them back, so the measurements after it see the 1%% case).
-- Every tenth owner drifts by a varied amount, the way finish.sql drifts 1%% (the same
-- generator); the owners active in the last hour (n %% 100 = 0, three charges of 50 each at
-- the override price) have a cache that stopped updating before those charges, so that
-- `--since 1h` selects only drifting owners.
DROP TABLE IF EXISTS bench_incident_saved;
CREATE TABLE bench_incident_saved AS
SELECT user_id, vibe_assistant_tokens_remaining AS remaining, vibe_assistant_tokens_used AS used
FROM user_profiles;

UPDATE user_profiles AS p
SET vibe_assistant_tokens_remaining = p.vibe_assistant_tokens_remaining + 100 + u.n %% 500
FROM bench_users AS u
WHERE u.user_id = p.user_id AND u.n %% 10 = 0 AND u.n %% 100 NOT IN (0, 50);

UPDATE user_profiles AS p
SET vibe_assistant_tokens_remaining = p.vibe_assistant_tokens_remaining + 150,
    vibe_assistant_tokens_used = p.vibe_assistant_tokens_used - 150
FROM bench_users AS u
WHERE u.user_id = p.user_id AND u.n %% 100 = 0;

VACUUM (ANALYZE) user_profiles;
