"""Proof by attempt: one write as an API role, with the JWT claims PostgREST sets, always undone.

Each attempt runs in a savepoint that is always rolled back (psycopg.Rollback), inside the
check's own transaction, with short lock and statement timeouts, so a probe never waits on
the app's rows for long and never leaves anything behind. What the write did is read back as
the tool, still inside that savepoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql

from tokenfix import queries

LOCK_TIMEOUT = "1s"
STATEMENT_TIMEOUT = "5s"

Kind = Literal[
    "changed",  # the write took effect
    "unchanged",  # rows were touched, but what is stored did not change (a trigger kept it)
    "no_rows",  # no error, and no row changed: the app's write would silently do nothing
    "denied",  # the role lacks the privilege: the app gets error 42501
    "refused",  # a trigger, CHECK constraint or policy refused it: protected
    "proves_nothing",  # the probe's own row broke a NOT NULL, foreign key, ... constraint
    "inconclusive",  # locked, timed out, or an error the probe cannot interpret
]


@dataclass(frozen=True)
class Claims:
    """The request as PostgREST presents it: the role, and the user's id as `sub` (none for
    anon, whose key carries no user)."""

    role: str
    sub: str | None = None

    def as_json(self) -> str:
        claims = {"role": self.role} | ({"sub": self.sub} if self.sub is not None else {})
        return json.dumps(claims)


@dataclass(frozen=True)
class Write:
    """One statement to attempt, and what the catalogs say it needs."""

    statement: sql.Composed
    params: dict[str, Any]
    may_write: bool
    """The role holds the privilege the write needs: a 42501 is then a policy's refusal."""
    may_filter: bool = True
    """The role may read the columns the WHERE clause names (else 42501 proves nothing)."""
    took_effect: Callable[[psycopg.Connection[Any]], bool] | None = field(default=None)
    """Read back as the tool after the write; None: every row the statement counted is one."""


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    rows: int
    detail: str
    """What happened, as words following the statement: 'touched 1 row and changed it'."""

    @property
    def conclusive(self) -> bool:
        return self.kind not in ("proves_nothing", "inconclusive")

    @property
    def took_effect(self) -> bool:
        return self.kind == "changed"


def attempt(conn: psycopg.Connection[Any], claims: Claims, write: Write) -> Outcome:
    """Run `write` as `claims.role` and undo it, whatever happens."""
    with conn.transaction(savepoint_name="tokenfix_probe") as probe:
        conn.execute(
            queries.get("probe_begin"),
            {
                "lock_timeout": LOCK_TIMEOUT,
                "statement_timeout": STATEMENT_TIMEOUT,
                "claims": claims.as_json(),
                "sub": claims.sub or "",
                "role": claims.role,
            },
        )
        conn.execute(queries.compose("probe_as_role", role=sql.Identifier(claims.role)))
        try:
            # A nested savepoint, so that an error leaves the probe's own savepoint usable.
            with conn.transaction(savepoint_name="tokenfix_attempt"):
                rows = conn.execute(write.statement, write.params).rowcount
        except psycopg.Error as exc:
            if conn.broken:
                raise
            outcome = classify(exc, write)
        else:
            conn.execute(queries.get("probe_end"))
            outcome = _effect(conn, max(rows, 0), write)
        raise psycopg.Rollback(probe)
    return outcome


def _rows(n: int) -> str:
    return f"touched {n} row{'' if n == 1 else 's'}"


def _effect(conn: psycopg.Connection[Any], rows: int, write: Write) -> Outcome:
    if rows == 0:
        return Outcome("no_rows", 0, _rows(0))
    if write.took_effect is None or write.took_effect(conn):
        return Outcome("changed", rows, f"{_rows(rows)} and took effect (rolled back)")
    return Outcome(
        "unchanged", rows, f"{_rows(rows)}, but a trigger kept the stored values (rolled back)"
    )


_CONTEXT_FUNCTION = re.compile(r"function ([^\s]+\))")
_OWN_ROW = {
    "23502": "NOT NULL",
    "23503": "foreign key",
    "23505": "unique",
    "23P01": "exclusion",
}


def classify(exc: psycopg.Error, write: Write) -> Outcome:
    """Which errors mean protected: only a trigger, a CHECK constraint or a policy
    (docs/doctor.md)."""
    state = exc.sqlstate or ""
    diag = exc.diag
    message = (diag.message_primary or str(exc)).splitlines()[0]
    found = _CONTEXT_FUNCTION.search(diag.context or "")
    function = found.group(1) if found else None
    if state == "42501":
        if not write.may_write:
            return Outcome("denied", 0, "was refused: permission denied (error 42501)")
        if not write.may_filter:
            return Outcome(
                "inconclusive",
                0,
                "was refused: the role may write but not read the column the probe filters on",
            )
        by = f"trigger function {function}" if function else "row-level security"
        return Outcome("refused", 0, f"was refused by {by} ({message})")
    if state in _OWN_ROW or state.startswith("22"):
        kind = _OWN_ROW.get(state, "a data")
        constraint = f" {diag.constraint_name}" if diag.constraint_name else ""
        return Outcome(
            "proves_nothing",
            0,
            f"failed on the probe's own row ({kind} error{constraint}: {message}): "
            "this proves nothing",
        )
    if state == "23514":
        return Outcome("refused", 0, f"was refused by CHECK constraint {diag.constraint_name}")
    if state == "44000":
        return Outcome("refused", 0, "was refused by the view's WITH CHECK OPTION")
    if state in ("55P03", "57014", "40001", "40P01"):
        return Outcome("inconclusive", 0, f"could not run ({message})")
    if function or state.startswith("P0"):
        by = f"trigger function {function}" if function else "a trigger"
        return Outcome("refused", 0, f"was refused by {by} ({message})")
    return Outcome("inconclusive", 0, f"failed with error {state} ({message})")
