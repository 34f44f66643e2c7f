-- The bodies of the functions of one relation's triggers, to follow a write they make into
-- another of the checked tables (whose own triggers then fire too).
SELECT p.prosrc AS body
FROM pg_trigger AS t
JOIN pg_proc AS p ON p.oid = t.tgfoid
WHERE t.tgrelid = to_regclass(%(relation)s) AND NOT t.tgisinternal
