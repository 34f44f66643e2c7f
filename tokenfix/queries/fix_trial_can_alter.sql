-- Whether the tool's role may change grants and policies on one table: its owner (or a member
-- of the owner role) or a superuser. A REVOKE by anyone else only warns and changes nothing.
SELECT pg_has_role(current_user, c.relowner, 'USAGE')
       OR (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user)
FROM pg_class AS c
WHERE c.oid = to_regclass(%(relation)s)
