-- An override row to probe the price table with (any will do).
SELECT {id}, {cost} FROM {table} LIMIT 1
