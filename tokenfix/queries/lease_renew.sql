-- Extend our lease; no row back means it is no longer ours (it expired and was taken over).
UPDATE {lease}
SET expires_at = clock_timestamp() + %(ttl)s::interval
WHERE name = 'writer' AND holder = %(holder)s AND expires_at > clock_timestamp()
RETURNING holder
