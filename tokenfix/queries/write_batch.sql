-- Write one batch with compare-and-set: a balance row is updated only if its written columns
-- still hold what was read under lock (NULL included); a missing one is inserted only if
-- nobody created it meanwhile. RETURNING reads back what the database stored (a trigger may
-- have changed it), and that is what the audit trail records, in the same statement (same
-- transaction). A write that left the compared columns as they were is no update: no audit row.
-- The mapping's write and create expressions see expected_remaining and expected_used
-- (numeric: amounts travel as their exact decimal text). A batch with no profile to create has
-- no INSERT at all (write_batch_no_insert.sql): PostgreSQL checks the privileges of every
-- table a statement names, so a role with UPDATE only can still fix balances.
-- On Citus (docs/citus.md) a multi-array unnest's columns all get the first array's type, so
-- one array is unnested and the others read by position; the UPDATE and INSERT run on the
-- shards, where no STABLE function (jsonb_build_object, to_jsonb) may take a row's columns:
-- the "before" is compared column by column, typed ({unchanged}), and both return their rows
-- whole, turned into jsonb after.
WITH planned AS (
    SELECT t.*, {was}
    FROM (  -- one array unnested, the others read by position: each column keeps its type
        SELECT k.tf_key, (%(actions)s::text[])[k.n] AS tf_action,
               (%(befores)s::jsonb[])[k.n] AS tf_before,
               (%(expected_remaining)s::text[]::numeric[])[k.n] AS expected_remaining,
               (%(expected_used)s::text[]::numeric[])[k.n] AS expected_used
        FROM unnest(%(keys)s::text[]::{key_type}[]) WITH ORDINALITY AS k (tf_key, n)
    ) AS t
), updated AS (
    UPDATE {balance} AS balance
    SET {assignments}
    FROM planned AS pl
    WHERE pl.tf_action = 'update'
      AND balance.{key} = pl.tf_key AND {where}
      AND {unchanged}
      AND {chosen}  -- snapshots: still the owner's newest row
    RETURNING balance.*
), new_rows AS (
    SELECT pl.tf_key AS key, pl.expected_remaining, pl.expected_used
    FROM planned AS pl
    WHERE pl.tf_action = 'insert'
), inserted AS (
    {insert_missing}
), written AS (  -- what the database stored, read from the rows each write returned
    SELECT balance.{key} AS tf_key, {written} AS tf_after, {stored_remaining} AS stored_remaining,
           {stored_used} AS stored_used, NULL::jsonb AS tf_full_row
    FROM updated AS balance
    UNION ALL
    SELECT balance.{key}, {written}, {stored_remaining}, {stored_used}, to_jsonb(balance.*)
    FROM inserted AS balance
), audited AS (
    INSERT INTO {changes} (run_id, key, action, before, after, full_row, tool_version, host)
    SELECT %(run_id)s, w.tf_key::text, pl.tf_action, pl.tf_before, w.tf_after, w.tf_full_row,
           %(tool_version)s, %(host)s
    FROM written AS w
    JOIN planned AS pl ON pl.tf_key = w.tf_key
    WHERE pl.tf_action = 'insert' OR w.tf_after IS DISTINCT FROM pl.tf_before
)
SELECT tf_key::text, stored_remaining, stored_used
FROM written
