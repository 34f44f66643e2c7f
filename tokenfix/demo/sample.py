"""A generated sample database with every situation of docs/balance-model.md, docs/commands.md, for
`tokenfix demo`.

Deterministic (seeded ids, fixed dates) so the README's captured output can be checked
against a fresh run. Healthy caches are set from the tool's own set-based model; a handful of
"telling" users then get exactly the drift each cause code describes.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from tokenfix.config.settings import Settings
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model

BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
STARTING_BALANCE = 1000
# Rows of the telling users use an action no override prices, so their drift is plain to see.
PLAIN_ACTION, PLAIN_MODEL = "summarize", "claude-3"

OVERRIDES = [
    # id, action_type, model_used, token_cost, is_active, valid_from, valid_until
    (1, "chat_conversation", None, 30, True, None, None),
    (2, "chat_conversation", "gpt-4", 50, True, BASE - timedelta(days=120), None),
    (3, "image_generation", None, 200, True, BASE - timedelta(days=30), BASE - timedelta(days=10)),
    (4, "code_review", None, 80, False, None, None),
]
BULK_ACTIONS = [
    ("chat_conversation", 60), ("image_generation", 15), ("code_review", 10),
    (PLAIN_ACTION, 10), ("admin_grant", 3), ("admin_deduct", 2),
]  # fmt: skip
MODELS = ["gpt-4", "gpt-4o-mini", "claude-3", None]

COPY_OVERRIDES = (
    "COPY ai_action_token_overrides (id, action_type, model_used, token_cost, is_active,"
    " valid_from, valid_until) FROM STDIN"
)
COPY_LEDGER = (
    "COPY token_usage (user_id, action_type, model_used, tokens_used, success, created_at)"
    " FROM STDIN"
)
COPY_PROFILES = (
    "COPY user_profiles (user_id, vibe_assistant_tokens_remaining, vibe_assistant_tokens_used,"
    " created_at, updated_at) FROM STDIN"
)


@dataclass
class Sample:
    users: int = 0
    ledger_rows: int = 0
    overrides: int = len(OVERRIDES)
    telling: dict[str, uuid.UUID] = field(default_factory=dict)
    rows: list[tuple[Any, ...]] = field(default_factory=list, repr=False)
    profiles: dict[uuid.UUID, datetime] = field(default_factory=dict, repr=False)
    cache_errors: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict, repr=False)


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sample = Sample()

    def user_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def row(
        self,
        user: uuid.UUID,
        at: datetime,
        tokens: int | None,
        *,
        action: str = PLAIN_ACTION,
        model: str | None = PLAIN_MODEL,
        success: bool | None = True,
    ) -> int:
        self.sample.rows.append((user, action, model, tokens, success, at))
        return tokens or 0

    def profile(
        self, user: uuid.UUID, created_at: datetime, *, error: tuple[int, int] = (0, 0)
    ) -> None:
        self.sample.profiles[user] = created_at
        if error != (0, 0):
            self.sample.cache_errors[user] = error


def _missed(amounts: list[int]) -> tuple[int, int]:
    """Charges the cache never saw: it shows that much more remaining, that much less used."""
    return sum(amounts), -sum(amounts)


def _telling_users(b: _Builder) -> None:
    day = timedelta(days=1)
    t = b.sample.telling

    stopped = t["stopped_updating"] = b.user_id()
    b.profile(stopped, BASE - 40 * day)
    amounts = [40, 85, 60, 120, 75, 90, 35, 110]
    for i, tokens in enumerate(amounts):
        b.row(stopped, BASE - (30 - 3 * i) * day, tokens)
    b.sample.cache_errors[stopped] = _missed(amounts[5:])

    overrides = t["overrides_not_applied"] = b.user_id()
    b.profile(overrides, BASE - 60 * day)
    raw = [400, 650, 520, 380]
    for i, tokens in enumerate(raw):
        b.row(overrides, BASE - (20 - i) * day, tokens, action="chat_conversation", model="gpt-4")
    extra = sum(tokens - 50 for tokens in raw)  # the cache charged tokens_used, not the price
    b.sample.cache_errors[overrides] = (-extra, extra)

    early = t["before_profile"] = b.user_id()
    before = [210, 90, 160]
    for i, tokens in enumerate(before):
        b.row(early, BASE - (50 - i) * day, tokens)
    b.profile(early, BASE - 45 * day)
    for i in range(4):
        b.row(early, BASE - (40 - 5 * i) * day, 100 + 25 * i)
    b.sample.cache_errors[early] = _missed(before)

    failed = t["failed_rows_charged"] = b.user_id()
    b.profile(failed, BASE - 50 * day)
    b.row(failed, BASE - 20 * day, 300)
    b.row(failed, BASE - 19 * day, 450, success=False)
    b.row(failed, BASE - 18 * day, 200, success=False)
    b.sample.cache_errors[failed] = (-650, 650)

    grants = t["grants_not_applied"] = b.user_id()
    b.profile(grants, BASE - 50 * day)
    b.row(grants, BASE - 25 * day, 5000, action="admin_grant", model=None)
    b.row(grants, BASE - 24 * day, 640)
    b.sample.cache_errors[grants] = (-5000, 0)

    deducts = t["deducts_not_applied"] = b.user_id()
    b.profile(deducts, BASE - 50 * day)
    b.row(deducts, BASE - 25 * day, 700, action="admin_deduct", model=None)
    b.row(deducts, BASE - 24 * day, 150)
    b.sample.cache_errors[deducts] = (700, 0)

    starting = t["starting_balance"] = b.user_id()
    b.profile(starting, BASE - 50 * day, error=(-STARTING_BALANCE, 0))
    b.row(starting, BASE - 24 * day, 310)

    invalid = t["invalid_rows"] = b.user_id()
    b.profile(invalid, BASE - 50 * day)
    b.row(invalid, BASE - 10 * day, 140)
    b.row(invalid, BASE - 9 * day, None)
    b.row(invalid, BASE - 8 * day, -25)
    b.row(invalid, BASE - 7 * day, 90, success=None)

    for key, tokens in (("missing_profile", 180), ("missing_profile_2", 95)):
        missing = t[key] = b.user_id()
        for i in range(3):
            b.row(missing, BASE - (15 - i) * day, tokens + 40 * i)

    recent = t["recent_activity"] = b.user_id()
    b.profile(recent, BASE - 50 * day)
    b.row(recent, BASE - 5 * day, 220)
    # the app wrote this row seconds ago and has not updated the balance yet
    now = datetime.now(UTC)
    b.sample.rows.append((recent, PLAIN_ACTION, PLAIN_MODEL, 60, True, now - timedelta(seconds=20)))
    b.sample.cache_errors[recent] = (60, -60)


def _bulk_users(b: _Builder, count: int) -> None:
    actions, weights = zip(*BULK_ACTIONS, strict=True)
    for _ in range(count):
        user = b.user_id()
        first = BASE - timedelta(days=b.rng.randint(20, 90), minutes=b.rng.randint(0, 1440))
        b.profile(user, first - timedelta(minutes=1))
        for _ in range(b.rng.randint(3, 30)):
            action = b.rng.choices(actions, weights)[0]
            at = first + timedelta(
                minutes=b.rng.randint(0, int((BASE - first).total_seconds() // 60))
            )
            roll = b.rng.random()
            tokens: int | None = (
                None if roll < 0.005 else 0 if roll < 0.02 else b.rng.randint(20, 1500)
            )
            if action == "admin_grant":
                tokens = b.rng.choice([2000, 5000, 10000])
            success = b.rng.random() > 0.04
            model = None if action.startswith("admin_") else b.rng.choice(MODELS)
            b.row(user, at, tokens, action=action, model=model, success=success)
        if b.rng.random() < 0.04:  # a few caches wrong for no single reason
            b.sample.cache_errors[user] = (b.rng.randint(-900, 900) or 1, b.rng.randint(-50, 50))


def build_sample(conn: psycopg.Connection[Any], *, users: int = 200, seed: int = 7) -> Sample:
    """Insert the sample into the tables (default names) of an empty database."""
    settings = sample_settings("")
    builder = _Builder(seed)
    _telling_users(builder)
    _bulk_users(builder, max(0, users - len(builder.sample.telling)))
    sample = builder.sample
    sample.users = len({row[0] for row in sample.rows} | set(sample.profiles))
    sample.ledger_rows = len(sample.rows)
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(COPY_OVERRIDES) as copy:
            for override in OVERRIDES:
                copy.write_row(override)
        with cur.copy(COPY_LEDGER) as copy:
            for row in sorted(sample.rows, key=lambda r: r[5]):
                copy.write_row(row)
        with cur.copy(COPY_PROFILES) as copy:
            for user, created in sample.profiles.items():
                copy.write_row((user, 0, 0, created, BASE - timedelta(days=1)))
        _set_caches(cur, settings, sample)
        cur.execute("ANALYZE")
    return sample


def set_caches_from_ledger(conn: psycopg.Connection[Any], settings: Settings) -> None:
    """Every cached balance set to what the ledger says, by the tool's own model (samples
    and benchmarks start from a consistent database, then get their planted errors)."""
    model = load_model(conn, settings)
    balances, params = model.balances(Selection())
    conn.execute(
        sql.SQL(
            "UPDATE {profiles} AS p SET {remaining} = b.expected_remaining,"
            " {used} = b.expected_used FROM ({balances}) AS b WHERE p.user_id = b.key"
        ).format(
            profiles=settings.profiles_table.identifier,
            remaining=sql.Identifier(settings.remaining_column.table_name),
            used=sql.Identifier(settings.used_column.table_name),
            balances=balances,
        ),
        params,
    )


def _set_caches(cur: psycopg.Cursor[Any], settings: Settings, sample: Sample) -> None:
    """Every cache as the ledger says, then the planted errors."""
    set_caches_from_ledger(cur.connection, settings)
    errors = [
        (user, *error) for user, error in sample.cache_errors.items() if user in sample.profiles
    ]
    cur.executemany(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining + %s, vibe_assistant_tokens_used ="
        " vibe_assistant_tokens_used + %s WHERE user_id = %s",
        [(remaining, used, user) for user, remaining, used in errors],
    )


def sample_settings(database_url: str) -> Settings:
    """The sample's own configuration: default names, whatever the environment says."""
    return Settings.model_validate(
        {
            "database_url": database_url,
            "starting_balance": STARTING_BALANCE,
            "usage_table": "token_usage",
            "profiles_table": "user_profiles",
            "overrides_table": "ai_action_token_overrides",
            "remaining_column": "vibe_assistant_tokens_remaining",
            "used_column": "vibe_assistant_tokens_used",
            "grant_action": "admin_grant",
            "deduct_action": "admin_deduct",
            "audit_schema": "tokenfix",
        }
    )


def telling_users(seed: int = 7) -> dict[str, uuid.UUID]:
    """The ids of the users planted with each situation (the same for the same seed)."""
    builder = _Builder(seed)
    _telling_users(builder)
    return builder.sample.telling
