-- The SQL names of the given type oids (as format_type prints them), in the order given.
SELECT format_type(t.oid, NULL)
FROM unnest(%(oids)s::oid[]) WITH ORDINALITY AS u (type_oid, position)
JOIN pg_type AS t ON t.oid = u.type_oid
ORDER BY u.position
