-- What the app's balance update would do as this role: set a balance to its own value.
-- Runs inside a transaction that is always rolled back.
UPDATE {profiles} SET {remaining} = {remaining} WHERE user_id = %(user_id)s
