-- Whether the audit schema and its three tables exist (no privileges needed to ask).
SELECT to_regclass(%(runs)s) IS NOT NULL
   AND to_regclass(%(changes)s) IS NOT NULL
   AND to_regclass(%(lease)s) IS NOT NULL
