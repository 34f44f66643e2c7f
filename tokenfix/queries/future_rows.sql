-- Owners with ledger rows dated more than a minute ahead of the server's clock (an app server
-- with a wrong clock): the settle window defers them until then. Read by each time index.
SELECT count(DISTINCT f.key), max(f.at)
FROM ({rows}) AS f
