-- Usage-based billing with a monthly allowance that resets (Autumn's customer_entitlements,
-- LiteLLM's budget_reset_at): one balance row per customer and feature, reset by a job that
-- moves next_reset_at forward and puts the allowance back; every metered call is an event.
CREATE TABLE customer_entitlements (
    id              text PRIMARY KEY,                 -- 'cus_001:ai_tokens'
    customer_id     text NOT NULL,
    feature_id      text NOT NULL,
    allowance       bigint NOT NULL,                  -- granted every period
    balance         bigint NOT NULL,                  -- what is left this period
    next_reset_at   timestamptz NOT NULL,
    reset_interval  interval NOT NULL DEFAULT interval '1 month',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entitlement_id  text NOT NULL REFERENCES customer_entitlements (id),
    value           bigint NOT NULL,                  -- units used by the call
    status          text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'failed')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON events (entitlement_id, created_at);
CREATE INDEX ON events (created_at);
