-- An AI SaaS starter on Supabase: one credits column on the profile (no "used"), a signed
-- ledger whose type says why credits moved, and signup credits that depend on when the user
-- signed up (they are never written to the ledger).
CREATE TABLE profiles (
    id          uuid PRIMARY KEY,
    email       text NOT NULL,
    credits     integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_transactions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES profiles (id),
    amount      integer NOT NULL,          -- + purchase / bonus / refund, - usage
    type        text NOT NULL CHECK (type IN ('purchase', 'usage', 'bonus', 'refund', 'adjustment')),
    note        text,                      -- why support adjusted (tokenfix grant --reason)
    idempotency_key text UNIQUE,           -- tokenfix grant --idempotency-key
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON credit_transactions (user_id);
CREATE INDEX ON credit_transactions (created_at);
