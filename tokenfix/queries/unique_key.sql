-- Whether a unique index on the key column alone guards the balance table (ON CONFLICT needs
-- one, and without it an owner may have two cached balances).
SELECT EXISTS (
    SELECT FROM pg_index AS i
    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = to_regclass(%(table)s) AND i.indisunique AND i.indnkeyatts = 1
      AND i.indpred IS NULL AND a.attname = %(column)s
)
