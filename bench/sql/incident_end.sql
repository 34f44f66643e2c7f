-- The caches as they were before incident.sql: the 1%% case again.
UPDATE user_profiles AS p
SET vibe_assistant_tokens_remaining = s.remaining, vibe_assistant_tokens_used = s.used
FROM bench_incident_saved AS s
WHERE s.user_id = p.user_id
  AND (p.vibe_assistant_tokens_remaining, p.vibe_assistant_tokens_used)
      IS DISTINCT FROM (s.remaining, s.used);

DROP TABLE bench_incident_saved;

VACUUM (ANALYZE) user_profiles;
