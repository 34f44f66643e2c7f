-- Whether the profiles table has a unique index on user_id alone (ON CONFLICT needs one).
SELECT EXISTS (
    SELECT FROM pg_index AS i
    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = to_regclass(%(table)s) AND i.indisunique AND i.indnkeyatts = 1
      AND a.attname = 'user_id'
)
