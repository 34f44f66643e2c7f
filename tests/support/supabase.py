"""A Supabase-shaped database: the Data API roles, auth.uid() and auth.jwt(), the usual grants;
and acting as an API role the way PostgREST does, to find the ground truth of a hole."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

API_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END $$;
"""

# As on Supabase: auth.uid() and auth.jwt() read the JWT claims the API sets per request (the
# JSON form and the legacy per-claim form), and the API roles get every privilege on public
# tables, sequences and functions, now and by default later; row-level security is what
# protects the rows.
SUPABASE_SHAPE = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
$$;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
$$;
CREATE TABLE IF NOT EXISTS auth.users (
    id uuid PRIMARY KEY,
    raw_user_meta_data jsonb,
    raw_app_meta_data jsonb
);
GRANT USAGE ON SCHEMA auth, public TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.jwt(), auth.role() TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO anon, authenticated, service_role;
"""


def create_api_roles(conn: psycopg.Connection[Any]) -> None:
    """Roles are cluster-wide: created once, idempotently, for the whole session."""
    conn.execute(API_ROLES)


def make_supabase_like(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SUPABASE_SHAPE)


def access_token(role: str, sub: uuid.UUID | str | None, **claims: Any) -> dict[str, Any]:
    """The claims PostgREST puts in request.jwt.claims: the anon key's, or a Supabase access
    token's for a signed-in user. Extra claims (user_metadata, email, ...) go in as given."""
    now = int(time.time())
    if sub is None:
        token: dict[str, Any] = {"iss": "supabase", "ref": "test", "role": role, "iat": now}
    else:
        token = {
            "iss": "https://test.supabase.co/auth/v1",
            "sub": str(sub),
            "aud": "authenticated",
            "exp": now + 3600,
            "iat": now,
            "email": "user@example.com",
            "phone": "",
            "role": role,
            "aal": "aal1",
            "amr": [{"method": "password", "timestamp": now}],
            "session_id": str(uuid.uuid4()),
            "is_anonymous": False,
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {},
        }
    return token | claims


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any],
    role: str,
    sub: uuid.UUID | str | None = None,
    *,
    method: str = "PATCH",
    path: str = "/user_profiles",
    **claims: Any,
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction that is always rolled back, as PostgREST (v10 and later) runs a request:
    exactly its settings, set locally (request.jwt.claims, request.method, request.path,
    request.headers, request.cookies; never the legacy request.jwt.claim.*), then SET LOCAL
    ROLE."""
    headers = {"accept": "*/*", "content-type": "application/json", "x-client-info": "test"}
    with conn.transaction(force_rollback=True):
        conn.execute(
            "SELECT set_config('request.jwt.claims', %s, true),"
            " set_config('request.method', %s, true),"
            " set_config('request.path', %s, true),"
            " set_config('request.headers', %s, true),"
            " set_config('request.cookies', '{}', true)",
            (json.dumps(access_token(role, sub, **claims)), method, path, json.dumps(headers)),
        )
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        yield conn


@dataclass(frozen=True)
class Attack:
    """What an attack as an API role did: rows changed, or the error's SQLSTATE; and what the
    database held right after it (read as the test's own role, before the rollback)."""

    rows: int
    error: str | None
    after: tuple[Any, ...] | None

    @property
    def worked(self) -> bool:
        return self.error is None and self.rows > 0


def attack(
    conn: psycopg.Connection[Any],
    role: str,
    sub: uuid.UUID | str | None,
    statement: str,
    params: Any = None,
    *,
    then: str | None = None,
    then_params: Any = None,
    method: str = "PATCH",
    path: str = "/user_profiles",
    **claims: Any,
) -> Attack:
    """Run `statement` as `role` (rolled back); `then` reads the result as the test's role."""
    with acting_as(conn, role, sub, method=method, path=path, **claims):
        try:
            with conn.transaction():
                rows = conn.execute(statement, params).rowcount
        except psycopg.Error as exc:
            return Attack(0, exc.sqlstate, None)
        conn.execute("RESET ROLE")
        after = conn.execute(then, then_params).fetchone() if then else None
        return Attack(rows, None, tuple(after) if after else None)


def raise_balance(
    conn: psycopg.Connection[Any],
    role: str,
    sub: uuid.UUID | None,
    victim: uuid.UUID,
    to: int = 1_000_000,
    **claims: Any,
) -> bool:
    """Ground truth: can `role`, as user `sub`, set `victim`'s balance to `to`? (rolled back)"""
    done = attack(
        conn,
        role,
        sub,
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = %s WHERE user_id = %s",
        (to, victim),
        then="SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s",
        then_params=(victim,),
        **claims,
    )
    return done.worked and done.after == (to,)


def raise_everyone(
    conn: psycopg.Connection[Any], role: str, sub: uuid.UUID | None, **claims: Any
) -> set[uuid.UUID]:
    """Ground truth: whose balances does a PATCH without a filter raise? (rolled back) It is
    judged by the UPDATE policies alone: the SELECT policies apply only to rows a WHERE reads."""
    with acting_as(conn, role, sub, **claims):
        try:
            with conn.transaction():
                conn.execute("UPDATE user_profiles SET vibe_assistant_tokens_remaining = 1000000")
        except psycopg.Error:
            return set()
        conn.execute("RESET ROLE")
        rows = conn.execute(
            "SELECT user_id FROM user_profiles WHERE vibe_assistant_tokens_remaining = 1000000"
        ).fetchall()
        return {row[0] for row in rows}


def mint_grant(
    conn: psycopg.Connection[Any], role: str, sub: uuid.UUID | None, user: uuid.UUID
) -> Attack:
    """Ground truth: can `role` insert an admin_grant of 1,000,000 tokens for `user`?"""
    return attack(
        conn,
        role,
        sub,
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
        " VALUES (%s, 'admin_grant', 1000000, true)",
        (user,),
    )


def lock_down_ledger(conn: psycopg.Connection[Any]) -> None:
    """The ledger and the price table as wants them: RLS on, users read their own usage,
    everyone signed in reads the prices, nobody but the server writes either."""
    conn.execute("ALTER TABLE token_usage ENABLE ROW LEVEL SECURITY")
    conn.execute(
        "CREATE POLICY own_usage_read ON token_usage FOR SELECT TO authenticated"
        " USING (auth.uid() = user_id)"
    )
    conn.execute("ALTER TABLE ai_action_token_overrides ENABLE ROW LEVEL SECURITY")
    conn.execute(
        "CREATE POLICY prices_read ON ai_action_token_overrides FOR SELECT TO authenticated"
        " USING (true)"
    )
