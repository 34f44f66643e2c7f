-- An open-source billing engine: a balance per wallet in numeric(30,5), integer enums for a
-- transaction's direction and status, timestamps without time zone, and derived columns that
-- must be rewritten with the balance (balance_cents = credits x rate x 100).
CREATE TABLE wallets (
    id               bigint PRIMARY KEY,
    customer         text NOT NULL,
    credit_balance   numeric(30,5) NOT NULL DEFAULT 0,
    conversion_rate  numeric(12,4) NOT NULL DEFAULT 1,
    balance_cents    bigint NOT NULL DEFAULT 0,
    created          timestamp NOT NULL DEFAULT now()
);

CREATE TABLE wallet_transactions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet_id           bigint NOT NULL REFERENCES wallets (id),
    credit_amount       numeric(30,5) NOT NULL,
    direction           smallint NOT NULL,          -- 1 inbound (credit), 2 outbound (debit),
                                                    -- 3 outbound adjustment (support)
    transaction_status  smallint NOT NULL,          -- 0 pending, 1 settled, 2 failed
    reason              text,
    created_at          timestamp NOT NULL DEFAULT now()
);
CREATE INDEX ON wallet_transactions (wallet_id);
CREATE INDEX ON wallet_transactions (created_at);
