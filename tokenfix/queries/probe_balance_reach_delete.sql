-- A DELETE without a filter on a column, as an API role: only the DELETE policies decide
-- which rows it reaches (the condition reads no column, so the SELECT policies do not apply,
-- and row-level security's own conditions are evaluated first). The condition divides by
-- zero at the first row reached: the probe learns whether any row is reached, and no row is
-- deleted. Always rolled back.
DELETE FROM {relation} WHERE 1 / (random() * 0)::int = 1
