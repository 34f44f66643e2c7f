-- Who owns one table, whether an API role is (or is a member of) its owner — an owner keeps
-- every privilege whatever REVOKE says, and passes row-level security unless it is forced —
-- and who should own it instead: postgres where that role exists, else the tool's role.
SELECT pg_get_userbyid(c.relowner)::text AS owner,
       pg_has_role(%(role)s, c.relowner, 'MEMBER') AS api_role_owns,
       CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = 'postgres') THEN 'postgres'
            ELSE current_user::text END AS new_owner
FROM pg_class AS c
WHERE c.oid = to_regclass(%(relation)s)
