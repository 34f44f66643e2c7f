-- AI credits as most apps sell them (OpenMeter's grants, Stripe's credit grants): plan
-- credits granted each month that expire at the month's end and burn first, purchased
-- top-ups that never expire and burn last, grants voided by support, and usage that burns
-- them down. The account row caches what is left.
CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    credits     numeric(20, 4) NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_grants (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id),
    source        text NOT NULL CHECK (source IN ('plan', 'top_up', 'promo')),
    amount        numeric(20, 4) NOT NULL,
    priority      smallint NOT NULL DEFAULT 0,     -- lower burns first
    effective_at  timestamptz NOT NULL,
    expires_at    timestamptz,                     -- NULL: never
    voided_at     timestamptz,
    deleted_at    timestamptz
);
CREATE INDEX ON credit_grants (account_id, effective_at);

CREATE TABLE usage_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    credits     numeric(20, 4) NOT NULL,
    model       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON usage_events (account_id, created_at);
CREATE INDEX ON usage_events (created_at);
