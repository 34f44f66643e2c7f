-- The audit trail (docs/safety.md), layout 0: the tables as the first tokenfix release made them.
-- A new audit schema is this plus every numbered migration (audit_layout_<N>.sql), applied in
-- one transaction; an existing one gets the migrations it lacks. Never change this file:
-- layout changes are new, additive migrations. Every statement is idempotent.

-- One row per writing run (reconcile or revert).
CREATE TABLE IF NOT EXISTS {schema}.runs (
    run_id           uuid PRIMARY KEY,
    command          text NOT NULL,
    reverts_run_id   uuid REFERENCES {schema}.runs (run_id),
    status           text NOT NULL DEFAULT 'running',
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    db_role          text NOT NULL DEFAULT current_user,
    tool_version     text NOT NULL,
    host             text NOT NULL,
    pid              integer NOT NULL,
    options          jsonb NOT NULL DEFAULT '{{}}',
    users_checked    integer,
    users_updated    integer,
    profiles_created integer,
    profiles_deleted integer,
    users_deferred   integer,
    users_changed    integer,
    error            text
);

-- One row per profile row written: its values before and after (NULL: no row).
CREATE TABLE IF NOT EXISTS {schema}.changes (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           uuid NOT NULL REFERENCES {schema}.runs (run_id),
    user_id          uuid NOT NULL,
    action           text NOT NULL,
    before_remaining bigint,
    before_used      bigint,
    after_remaining  bigint,
    after_used       bigint,
    changed_at       timestamptz NOT NULL DEFAULT now(),
    db_role          text NOT NULL DEFAULT current_user,
    tool_version     text NOT NULL,
    host             text NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_run_user_idx ON {schema}.changes (run_id, user_id);

-- The single-writer lease: one row while a writing run lives, renewed by it, taken over
-- only once expired. Unlike a session advisory lock it holds through transaction poolers.
CREATE TABLE IF NOT EXISTS {schema}.lease (
    name        text PRIMARY KEY,
    holder      uuid NOT NULL,
    run_id      uuid,
    command     text NOT NULL,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
