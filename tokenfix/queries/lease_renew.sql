-- Extend our lease; no row back means it is no longer ours (it expired and another run took
-- it over). A lease that expired while nobody wanted it is still ours to extend.
UPDATE {lease}
SET expires_at = clock_timestamp() + %(ttl)s::interval
WHERE name = 'writer' AND holder = %(holder)s
RETURNING holder
