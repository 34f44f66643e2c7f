-- A content platform's credits: a varchar handle as the key, one numeric(20,9) balance, soft
-- deletes on both tables (status = 'published'), and pending entries that do not count yet.
CREATE TABLE accounts (
    handle   varchar(40) PRIMARY KEY,
    balance  numeric(20,9) NOT NULL DEFAULT 0,
    status   text NOT NULL DEFAULT 'published'     -- 'published' or 'archived'
);

CREATE TABLE ledger_entries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_handle  varchar(40) NOT NULL,
    delta           numeric(20,9) NOT NULL,
    status          text NOT NULL DEFAULT 'published',  -- 'published' or 'archived'
    state           text NOT NULL DEFAULT 'completed',  -- 'pending' or 'completed'
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON ledger_entries (account_handle);
CREATE INDEX ON ledger_entries (created_at);
