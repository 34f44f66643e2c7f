-- Whether a validated foreign key, its checks enabled, ties the ledger's key column alone to the
-- balance key column alone: then no ledger row (but one with a NULL key) belongs to an owner
-- without a balance row, and a periods pass may drop the rows outside every owner's period
-- before joining each row to its owner's (docs/performance.md).
SELECT EXISTS (
    SELECT FROM pg_constraint AS c
    JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    JOIN pg_attribute AS f ON f.attrelid = c.confrelid AND f.attnum = c.confkey[1]
    WHERE c.contype = 'f' AND c.convalidated
      AND c.conrelid = to_regclass(%(ledger)s) AND c.confrelid = to_regclass(%(balance)s)
      AND cardinality(c.conkey) = 1 AND a.attname = %(column)s AND f.attname = %(key)s
      AND NOT EXISTS (
          SELECT FROM pg_trigger AS t WHERE t.tgconstraint = c.oid AND t.tgenabled = 'D'
      )
)
