-- Lock a batch's profile rows in user_id order and read their current balance values.
SELECT p.user_id, p.{remaining}::bigint AS remaining, p.{used}::bigint AS used
FROM {profiles} AS p
WHERE p.user_id = ANY(%(user_ids)s)
ORDER BY p.user_id
FOR UPDATE
