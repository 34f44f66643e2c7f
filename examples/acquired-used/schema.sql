-- An LLM gateway: credits acquired and used per customer in bigint microdollars (remaining is
-- computed, not stored), a text key, and two ledgers: signed credit transactions (some belong
-- to an organisation, not to the customer) and usage events with a cost and an error flag.
CREATE TABLE customers (
    customer_id       text PRIMARY KEY,
    credits_acquired  bigint NOT NULL DEFAULT 0,   -- microdollars
    credits_used      bigint NOT NULL DEFAULT 0,   -- microdollars
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_transactions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  text NOT NULL,
    org_id       text,                              -- set: the organisation's, not the user's
    amount       bigint NOT NULL,                   -- + top-up, - expiry (microdollars)
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON credit_transactions (customer_id);
CREATE INDEX ON credit_transactions (created_at);

CREATE TABLE usage_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  text NOT NULL,
    model        text,
    cost_micros  bigint NOT NULL,
    is_error     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON usage_events (customer_id);
CREATE INDEX ON usage_events (created_at);
