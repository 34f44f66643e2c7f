-- Whether a btree index on the ledger leads with its key column, in that type's default order,
-- and the column has the balance key column's type and collation: then the ledger keys that
-- are not balance keys are found through that index, one probe per gap between two balance
-- keys (period_orphans.sql), and a periods pass may drop the rows before every owner's period
-- without a foreign key (docs/performance.md).
SELECT EXISTS (
    SELECT FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_am AS m ON m.oid = c.relam
    JOIN pg_opclass AS o ON o.oid = i.indclass[0]
    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    JOIN pg_attribute AS k ON k.attrelid = to_regclass(%(balance)s) AND k.attname = %(key)s
    WHERE i.indrelid = to_regclass(%(ledger)s) AND a.attname = %(column)s
      AND i.indisvalid AND i.indisready AND i.indpred IS NULL
      AND m.amname = 'btree' AND o.opcdefault
      AND i.indcollation[0] = a.attcollation
      AND a.atttypid = k.atttypid AND a.attcollation = k.attcollation
      AND NOT a.attisdropped AND NOT k.attisdropped
)
