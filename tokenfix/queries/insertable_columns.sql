-- The columns of the profiles table a plain INSERT may set (not generated, not GENERATED
-- ALWAYS AS IDENTITY): what re-creating a deleted row from its full content writes.
SELECT a.attname::text
FROM pg_attribute AS a
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attgenerated = '' AND a.attidentity <> 'a'
ORDER BY a.attnum
