-- A second ledger source for the two-source mapping (bench/two_sources.toml): signed credit
-- transactions, %(rows)s rows over the same users and 180 days (as many as token_usage: a
-- comparable size), and a balance table of its own, so the default mapping's caches stay as
-- they are. 80 %% top-ups (+), 20 %% expiries and refunds (-); 96 %% completed, 2 %% pending
-- (outside the mapping's `where`), 2 %% failed (not counted).
DROP TABLE IF EXISTS credit_transactions;
CREATE TABLE credit_transactions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid NOT NULL,
    amount     integer NOT NULL,
    status     text NOT NULL,
    created_at timestamptz NOT NULL
);

SELECT setseed(0.1717);

INSERT INTO credit_transactions (user_id, amount, status, created_at)
SELECT u.user_id,
       CASE WHEN r.sign < 0.80 THEN 1 + (r.size * 5000)::int ELSE -1 - (r.size * 2000)::int END,
       CASE WHEN r.outcome < 0.96 THEN 'completed' WHEN r.outcome < 0.98 THEN 'pending'
            ELSE 'failed' END,
       now() - interval '181 days' + r.moment * interval '180 days'
FROM (
    SELECT 1 + floor(random() * %(users)s)::int AS user_number,
           random() AS sign, random() AS size, random() AS outcome, random() AS moment
    FROM generate_series(1, %(rows)s)
) AS r
JOIN bench_users AS u ON u.n = r.user_number;

-- One wallet per profile (bigint balances), set from both sources by the tool's own model next.
DROP TABLE IF EXISTS bench_wallets;
CREATE TABLE bench_wallets (
    user_id           uuid PRIMARY KEY,
    credits_remaining bigint NOT NULL,
    credits_used      bigint NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO bench_wallets (user_id, credits_remaining, credits_used)
SELECT user_id, 0, 0 FROM user_profiles;
