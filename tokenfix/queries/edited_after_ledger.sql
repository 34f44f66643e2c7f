-- --defer-edited (docs/commands.md, support adjustments): of a batch of owners whose cache is
-- above expected, those whose balance row changed more than the settle window after their
-- newest ledger row (read through each ledger's key index), or that have no ledger row at all.
-- The app moves the cache right after it writes the ledger row; a change long after the last
-- ledger row is a hand edit. A cache that stopped following has a row older than its newest
-- charge and stays a candidate.
SELECT balance.{key}::text
FROM {balance}
WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where}
  AND ({changed_at})::timestamptz
      > coalesce({newest}, '-infinity'::timestamptz) + %(edit_settle)s::interval
