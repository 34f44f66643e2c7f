-- A PATCH without a filter, as an API role: no column is read, so only the UPDATE policies
-- decide which rows it reaches. The value is computed per row and divides by zero at the
-- first row reached (random() keeps the planner from folding it): the probe learns whether
-- any row is reached, and no row is written or locked. Always rolled back.
UPDATE {relation} SET {column} = 1 / (random() * 0)::int
