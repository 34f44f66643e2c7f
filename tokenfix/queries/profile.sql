-- One user's cached balance row.
SELECT p.{remaining} AS tokens_remaining,
       p.{used} AS tokens_used,
       p.created_at,
       p.updated_at
FROM {profiles} AS p
WHERE p.user_id = %(user_id)s
