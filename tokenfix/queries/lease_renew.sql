-- Extend our lease; no row back means it is no longer ours (it expired and another run took
-- it over). A lease that expired while nobody wanted it is still ours to extend. The row
-- naming our balance table (lease_table_take.sql) is extended with it; only the 'writer' row
-- says whether the lease is still ours.
WITH renewed AS (
    UPDATE {lease}
    SET expires_at = clock_timestamp() + %(ttl)s::interval
    WHERE holder = %(holder)s
    RETURNING name, holder
)
SELECT holder FROM renewed WHERE name = 'writer'
