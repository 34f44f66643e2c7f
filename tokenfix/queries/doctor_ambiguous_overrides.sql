-- Pairs of active overrides that rank equally for some possible row (same action, same model,
-- same valid_from, overlapping windows): only the id decides between them.
SELECT a.id AS lower_id, b.id AS higher_id, a.action_type, a.model_used
FROM {overrides} AS a
JOIN {overrides} AS b
  ON a.id < b.id
 AND a.is_active AND b.is_active
 AND a.token_cost IS NOT NULL AND b.token_cost IS NOT NULL
 AND a.action_type = b.action_type
 AND a.model_used IS NOT DISTINCT FROM b.model_used
 AND {a_from} IS NOT DISTINCT FROM {b_from}
 AND coalesce(least({a_until}, {b_until}), 'infinity'::timestamptz)
     > coalesce({a_from}, '-infinity'::timestamptz)
ORDER BY a.id, b.id
