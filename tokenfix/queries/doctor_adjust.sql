-- doctor: compile a support adjustment's INSERT ([adjust] grant or deduct) without running it.
-- EXPLAIN plans the statement (so its expressions, columns and types are checked, and the
-- role's INSERT privilege on those columns) without executing it, even in a read-only
-- transaction; the SELECT reads no table (the key's type comes from the balance table's row
-- type): on Citus (docs/citus.md) an INSERT … SELECT from a distributed table with parameters
-- cannot be planned.
EXPLAIN INSERT INTO {table} AS l ({columns})
SELECT {values}
FROM (SELECT (NULL::{balance}).{key} AS key, NULL::numeric AS amount, NULL::text AS reason,
             NULL::uuid AS run_id, NULL::text AS idempotency_key
      LIMIT 0) AS adjust
