"""Hundreds of random users: reconcile agrees with the pure-Python reference, to the token.

Dry run lists exactly the users the reference says are not ok, with its numbers; a write run
makes every cache equal the reference; a second run finds nothing; revert puts back the exact
previous values.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import astuple
from datetime import timedelta

import psycopg

from tests.support import reference
from tests.support.builders import BASE_TIME
from tests.support.clirunner import CliRunner

ACTIONS = ["chat_conversation", "image_generation", "code_review", "admin_grant", "admin_deduct"]
MODELS = [None, "gpt-4", "claude", "gemini"]
STARTING = 500


def random_world(rng: random.Random, users: int = 300):
    overrides = []
    for oid in range(1, 13):
        start = rng.choice([None, rng.randint(0, 500)])
        end = rng.choice([None, (start or 0) + rng.randint(1, 400)])
        overrides.append(
            reference.Override(
                id=oid,
                action_type=rng.choice(ACTIONS),
                model_used=rng.choice(MODELS),
                token_cost=rng.randint(0, 60),
                is_active=rng.random() > 0.15,
                valid_from=None if start is None else BASE_TIME + timedelta(minutes=start),
                valid_until=None if end is None else BASE_TIME + timedelta(minutes=end),
            )
        )
    rows, profiles = [], {}
    next_id = 1
    for _ in range(users):
        user = uuid.uuid4()
        mine = []
        for _ in range(rng.choice([0, 1, 3, 8, 15])):
            tokens = rng.choice([None, -7, 0, rng.randint(1, 400), rng.randint(1, 400)])
            success = rng.choice([True, True, True, False, None])
            at = BASE_TIME + timedelta(minutes=rng.randint(0, 900))
            mine.append(
                reference.Row(
                    next_id, user, rng.choice(ACTIONS), rng.choice(MODELS), tokens, success, at
                )
            )
            next_id += 1
        rows += mine
        if mine and rng.random() < 0.2:
            continue  # ledger rows, no profile
        truth = reference.expected(mine, overrides, starting_balance=STARTING)
        remaining, used = truth.remaining, truth.used
        if rng.random() < 0.4:
            remaining += rng.choice([-1, 1]) * rng.randint(1, 300)
            used += rng.choice([0, rng.randint(-50, 50)])
        profiles[user] = (remaining, used)
    return overrides, rows, profiles


def load(conn: psycopg.Connection, overrides, rows, profiles) -> None:
    with conn.cursor() as cur:
        with cur.copy("COPY ai_action_token_overrides FROM STDIN") as copy:
            for o in overrides:  # the dataclass fields are the table's columns, in order
                copy.write_row(astuple(o))
        with cur.copy(
            "COPY token_usage (id, user_id, action_type, model_used, tokens_used, success, created_at) FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row(
                    (
                        r.id,
                        r.user_id,
                        r.action_type,
                        r.model_used,
                        r.tokens_used,
                        r.success,
                        r.created_at,
                    )
                )
        with cur.copy(
            "COPY user_profiles (user_id, vibe_assistant_tokens_remaining, vibe_assistant_tokens_used) FROM STDIN"
        ) as copy:
            for user, (remaining, used) in profiles.items():
                copy.write_row((user, remaining, used))


def snapshot(conn: psycopg.Connection) -> dict[uuid.UUID, tuple[int, int]]:
    return {
        row[0]: (row[1], row[2])
        for row in conn.execute(
            "SELECT user_id, vibe_assistant_tokens_remaining, vibe_assistant_tokens_used FROM user_profiles"
        )
    }


def test_reconcile_matches_the_reference_and_revert_restores(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    rng = random.Random(20261125)
    overrides, rows, profiles = random_world(rng)
    load(conn, overrides, rows, profiles)
    by_user: dict[uuid.UUID, list[reference.Row]] = {}
    for r in rows:
        by_user.setdefault(r.user_id, []).append(r)
    users = set(by_user) | set(profiles)
    truth = {
        u: reference.expected(by_user.get(u, []), overrides, starting_balance=STARTING)
        for u in users
    }
    not_ok = {
        u for u in users if u not in profiles or profiles[u] != (truth[u].remaining, truth[u].used)
    }
    assert 40 < len(not_ok) < 250  # the world exercises both kinds
    assert any(u not in profiles for u in not_ok)

    args = ["--starting-balance", str(STARTING)]
    dry = cli("reconcile", "--all", "--dry-run", "--json", *args)
    assert dry.exit_code == 1
    data = dry.json()
    assert data["users_checked"] == len(users)
    assert [c["user_id"] for c in data["changes"]] == sorted(str(u) for u in not_ok)
    for change in data["changes"]:
        want = truth[uuid.UUID(change["user_id"])]
        assert change["expected"] == {"tokens_remaining": want.remaining, "tokens_used": want.used}

    before = snapshot(conn)
    wrote = cli(
        "reconcile",
        "--all",
        "--yes",
        "--create-missing",
        "--settle",
        "0",
        "--max-changes",
        "0",
        "--batch-size",
        "37",
        "--json",
        *args,
    )
    assert wrote.exit_code == 0, wrote.stderr
    result = wrote.json()
    assert result["users_updated"] + result["profiles_created"] == len(not_ok)
    assert snapshot(conn) == {u: (truth[u].remaining, truth[u].used) for u in users}

    again = cli("reconcile", "--all", "--dry-run", "--json", *args)
    assert (again.exit_code, again.json()["changes"]) == (0, [])

    undone = cli("revert", result["run_id"], "--yes", "--json")
    assert undone.exit_code == 0, undone.stderr
    assert snapshot(conn) == before
