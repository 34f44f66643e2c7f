-- `candidates` where the balance table is distributed by Citus (docs/citus.md): the same rows
-- and totals, in one aggregate Citus runs on every shard and combines on the coordinator
-- (array_agg's arrays concatenated), so the comparison is read once, where it is computed,
-- instead of becoming an intermediate result on the coordinator that is read twice (the
-- candidates, then the totals). One row: the owners whose status is not ok as parallel arrays
-- (every array_agg of one aggregate sees the rows in the same order; NULLs are kept), the
-- arrays' positions in the key's own order, the totals, the owners with ledger rows inside
-- the settle window (`recent`, as text), and each owner's evidence of its causes
-- (balances.sql), as one server's pass carries it. `ORDER BY NULL::integer` (no sort) fences
-- the comparison as source_rows.sql fences a ledger's rows: each owner's comparison is computed
-- once, not inlined into every array_agg's FILTER; Citus pushes it down (not an OFFSET 0).
SELECT a.*,
       ARRAY(SELECT u.o FROM unnest(a.keys) WITH ORDINALITY AS u(k, o) ORDER BY u.k) AS key_order,
       ({recent})::text[] AS recent_keys
FROM (
    SELECT count(*) AS users_checked,
           coalesce(sum(current_remaining) FILTER (WHERE has_profile), 0)::numeric
               AS cached_remaining_total,
           coalesce(sum(current_used) FILTER (WHERE has_profile), 0)::numeric AS cached_used_total,
           coalesce(sum(expected_remaining) FILTER (WHERE has_profile), 0)::numeric
               AS expected_remaining_total,
           coalesce(sum(expected_used) FILTER (WHERE has_profile), 0)::numeric AS expected_used_total,
           array_agg(key) FILTER (WHERE attention) AS keys,
           array_agg(key::text) FILTER (WHERE attention) AS key_text,
           array_agg(has_profile) FILTER (WHERE attention) AS has_profile,
           array_agg(current_remaining) FILTER (WHERE attention) AS current_remaining,
           array_agg(current_used) FILTER (WHERE attention) AS current_used,
           array_agg(expected_remaining) FILTER (WHERE attention) AS expected_remaining,
           array_agg(expected_used) FILTER (WHERE attention) AS expected_used,
           array_agg(drift_remaining) FILTER (WHERE attention) AS drift_remaining,
           array_agg(drift_used) FILTER (WHERE attention) AS drift_used,
           array_agg(row_id) FILTER (WHERE attention) AS row_id,
           array_agg(starting) FILTER (WHERE attention) AS starting,
           array_agg(granted) FILTER (WHERE attention) AS granted,
           array_agg(deducted) FILTER (WHERE attention) AS deducted,
           array_agg(override_difference) FILTER (WHERE attention) AS override_difference,
           array_agg(failed_charge_tokens) FILTER (WHERE attention) AS failed_charge_tokens,
           array_agg(failed_charge_tokens_priced) FILTER (WHERE attention)
               AS failed_charge_tokens_priced,
           array_agg(early) FILTER (WHERE attention) AS early
    FROM (
{balances}
    ORDER BY NULL::integer
    ) AS compared
) AS a
