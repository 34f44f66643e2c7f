-- 1%% of the wallets wrong (other users than the profiles' 1%%); the indexes `tokenfix doctor`
-- asks of a ledger source: its key, and its time for --since and the settle window.
UPDATE bench_wallets AS w
SET credits_remaining = w.credits_remaining - 100 - u.n %% 300
FROM bench_users AS u
WHERE u.user_id = w.user_id AND u.n %% 100 = 25;

CREATE INDEX IF NOT EXISTS credit_transactions_user_id_idx ON credit_transactions (user_id);
CREATE INDEX IF NOT EXISTS credit_transactions_created_at_idx ON credit_transactions (created_at);
