-- What revert does with each audit row of a batch, decided on the balance rows as they are
-- now (docs/safety.md): revert's rules, in one text. revert_batch.sql writes what this decides (on
-- rows its transaction has locked); revert_check.sql only shows it (a dry run reads).
-- Not a statement: CTEs (planned … decided), included after a WITH.
--   restore  (a row the run changed): only if its written columns still hold exactly what
--            the run left;
--   delete   (a row the run created): only if the whole row is still exactly what the run
--            wrote (the audit keeps it) and no other row references it;
--   recreate (a row the run deleted): only if no row has its key.
-- A row left alone says why (tf_reason): unverifiable (created by a tokenfix that kept no full
-- row), referenced, already_restored (it already holds what the revert would put back: an
-- earlier revert did, or the app), or changed_since.
-- What the run left and what a restore puts back also come typed (tf_was_N, tf_restore_N):
-- revert_batch.sql compares and assigns columns, which Citus runs on the shards (docs/citus.md).
planned AS (
    SELECT t.*, {typed}
    FROM (  -- one array unnested, the others read by position: each column keeps its type
        SELECT k.tf_key, (%(hows)s::text[])[k.n] AS tf_how, (%(lefts)s::jsonb[])[k.n] AS tf_left,
               (%(restores)s::jsonb[])[k.n] AS tf_restore,
               (%(full_rows)s::jsonb[])[k.n] AS tf_full_row
        FROM unnest(%(keys)s::text[]::{key_type}[]) WITH ORDINALITY AS k (tf_key, n)
    ) AS t
), found AS (
    SELECT pl.*,
           balance.{key} IS NOT NULL AS tf_exists,
           balance.tf_current,
           balance.tf_row,
           CASE WHEN pl.tf_how = 'delete' AND balance.{key} IS NOT NULL THEN balance.tf_referenced
                ELSE false END AS tf_referenced
    FROM planned AS pl
    LEFT JOIN (  -- the rows made into jsonb, and their references checked, where they live:
                 -- Citus, joining a shard's rows with ours, would ship only the columns named
                 -- (to_jsonb would see NULLs) and runs no correlated subquery over the join
        SELECT balance.*, {written} AS tf_current, to_jsonb(balance.*) AS tf_row,
               CASE WHEN balance.{key} = ANY(%(delete_keys)s::text[]::{key_type}[])
                    THEN {referenced} ELSE false END AS tf_referenced
        FROM {balance_rows} AS balance
        WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[])
    ) AS balance ON balance.{key} = pl.tf_key
), judged AS (
    SELECT f.*,
           CASE
               WHEN f.tf_how = 'restore' AND f.tf_current = f.tf_left THEN NULL
               WHEN f.tf_how = 'delete' AND NOT f.tf_exists THEN 'already_restored'
               WHEN f.tf_how = 'delete' AND f.tf_full_row IS NULL THEN 'unverifiable'
               WHEN f.tf_how = 'delete' AND f.tf_referenced THEN 'referenced'
               WHEN f.tf_how = 'delete' AND f.tf_row = f.tf_full_row THEN NULL
               WHEN f.tf_how = 'recreate' AND NOT f.tf_exists THEN NULL
               WHEN f.tf_current = f.tf_restore THEN 'already_restored'
               ELSE 'changed_since'
           END AS tf_reason
    FROM found AS f
), decided AS (  -- tf_action: what the revert writes; NULL: the row is left alone
    SELECT j.*,
           CASE WHEN j.tf_reason IS NULL
                THEN CASE j.tf_how WHEN 'recreate' THEN 'insert' ELSE j.tf_how END
           END AS tf_action
    FROM judged AS j
)
