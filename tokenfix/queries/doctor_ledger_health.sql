-- Ledger rows that count for nothing because they are malformed (SPEC §3 "invalid"), and users
-- with ledger rows but no profile row. One pass over the ledger, one probe per user.
WITH per_user AS (
    SELECT u.user_id, count(*) FILTER (WHERE {invalid_row}) AS invalid_rows
    FROM {usage} AS u
    GROUP BY u.user_id
)
SELECT coalesce(sum(l.invalid_rows), 0)::bigint AS invalid_rows,
       count(*) FILTER (WHERE p.user_id IS NULL) AS users_without_profile
FROM per_user AS l
LEFT JOIN {profiles} AS p ON p.user_id = l.user_id
