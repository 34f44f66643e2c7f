-- Active overrides in best-match order (docs/balance-model.md): model-specific first, then the latest
-- valid_from (NULL counts as earliest), then the highest id. The first that matches a row wins.
-- {valid_from} / {valid_until} are the columns, or NULL where the table lacks them (unbounded).
SELECT o.id, o.action_type, o.model_used, o.token_cost,
       {valid_from} AS valid_from, {valid_until} AS valid_until
FROM {overrides} AS o
WHERE o.is_active AND o.token_cost IS NOT NULL
ORDER BY o.model_used IS NOT NULL DESC, 5 DESC NULLS LAST, o.id DESC
