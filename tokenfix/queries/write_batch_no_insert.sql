-- The `inserted` step of write_batch.sql for batches that create no profile: no rows, the
-- same columns, and no INSERT for PostgreSQL to check privileges for.
SELECT * FROM updated WHERE false
