-- The user's last %(limit)s ledger rows, oldest first, each with its class, the tokens it
-- moves and the expected remaining balance after it (running over the whole ledger).
SELECT id, created_at, action_type, model_used, tokens_used, success, class, effective,
       expected_remaining
FROM (
    SELECT u.id, u.created_at, u.action_type, u.model_used, u.tokens_used, u.success,
           {row_class} AS class,
           CASE WHEN {charge_row} THEN {effective}
                WHEN {grant_row} OR {deduct_row} THEN u.tokens_used
                ELSE 0 END AS effective,
           %(starting_balance)s::bigint + sum(
               CASE WHEN {grant_row} THEN u.tokens_used
                    WHEN {deduct_row} THEN -u.tokens_used
                    WHEN {charge_row} THEN -{effective}
                    ELSE 0 END
           ) OVER (ORDER BY u.created_at, u.id ROWS UNBOUNDED PRECEDING) AS expected_remaining
    FROM {usage} AS u
    WHERE u.user_id = %(user_id)s
    ORDER BY u.created_at DESC, u.id DESC
    LIMIT %(limit)s
) AS last_rows
ORDER BY created_at, id
