"""Real rows for tests: profiles, ledger rows and overrides under the default schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ensure_role(conn: psycopg.Connection[Any], name: str, attributes: str = "LOGIN") -> None:
    """Roles are cluster-wide and outlive a test's database: create each one once."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    if not exists:
        # attributes are the test's own words (LOGIN, BYPASSRLS), never input
        conn.execute(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(name), sql.SQL(attributes)))


class Ledger:
    """Inserts rows with a deterministic clock: each ledger row one minute after the last."""

    def __init__(self, conn: psycopg.Connection[Any]):
        self.conn = conn
        self.clock = BASE_TIME

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def user(self) -> uuid.UUID:
        return uuid.uuid4()

    def profile(
        self,
        user: uuid.UUID,
        remaining: int = 0,
        used: int = 0,
        *,
        created_at: datetime | None = None,
    ) -> uuid.UUID:
        created = created_at or BASE_TIME
        self.conn.execute(
            "INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining,"
            " vibe_assistant_tokens_used, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
            (user, remaining, used, created, created),
        )
        return user

    def drifting(self, tokens: int = 100, *, remaining: int = 0) -> uuid.UUID:
        """A user whose cache missed a charge of `tokens` an hour ago (outside any settle window)."""
        user = self.profile(self.user(), remaining=remaining)
        self.row(user, tokens, at=datetime.now(UTC) - timedelta(hours=1))
        return user

    def row(
        self,
        user: uuid.UUID,
        tokens: int | None = 100,
        *,
        action: str = "chat_conversation",
        model: str | None = "gpt-4",
        success: bool | None = True,
        at: datetime | None = None,
    ) -> int:
        found = self.conn.execute(
            "INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, success,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (user, action, model, tokens, success, at or self.tick()),
        ).fetchone()
        assert found is not None
        return int(found[0])

    def override(
        self,
        action: str,
        cost: int,
        *,
        model: str | None = None,
        active: bool = True,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        id: int | None = None,
    ) -> int:
        found = self.conn.execute(
            "INSERT INTO ai_action_token_overrides (id, action_type, model_used, token_cost,"
            " is_active, valid_from, valid_until)"
            " VALUES (coalesce(%s, nextval(pg_get_serial_sequence('ai_action_token_overrides', 'id'))),"
            " %s, %s, %s, %s, %s, %s) RETURNING id",
            (id, action, model, cost, active, valid_from, valid_until),
        ).fetchone()
        assert found is not None
        return int(found[0])

    def cached(self, user: uuid.UUID) -> tuple[int, int] | None:
        found = self.conn.execute(
            "SELECT vibe_assistant_tokens_remaining, vibe_assistant_tokens_used"
            " FROM user_profiles WHERE user_id = %s",
            (user,),
        ).fetchone()
        return (int(found[0]), int(found[1])) if found else None
