-- The write batch's missing profiles (the `inserted` step of write_batch.sql), for batches
-- that create some: inserted only if nobody created them meanwhile. The row comes back whole
-- (write_batch.sql reads it: docs/citus.md).
INSERT INTO {balance} AS balance ({create_columns})
SELECT {create_values}
FROM new_rows
ON CONFLICT ({key}) DO NOTHING
RETURNING balance.*
