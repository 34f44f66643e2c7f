-- Given user ids with neither a profile row nor a ledger row (a typo, or the wrong database).
SELECT g.user_id
FROM unnest(%(user_ids)s::uuid[]) AS g (user_id)
WHERE NOT EXISTS (SELECT FROM {profiles} AS p WHERE p.user_id = g.user_id)
  AND NOT EXISTS (SELECT FROM {usage} AS u WHERE u.user_id = g.user_id)
ORDER BY g.user_id
