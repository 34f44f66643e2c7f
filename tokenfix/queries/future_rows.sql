-- Users with ledger rows dated more than a minute ahead of the server's clock (an app server
-- with a wrong clock): the settle window defers them until then. Read by the created_at index.
SELECT count(DISTINCT u.user_id), max(u.created_at)
FROM {usage} AS u
WHERE u.created_at > statement_timestamp() + interval '1 minute'
