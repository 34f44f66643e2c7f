"""Proof by attempt: one write as an API role, with the JWT claims PostgREST sets, always undone.

Each attempt runs in a savepoint that is always rolled back (psycopg.Rollback), inside the
check's own transaction, with short lock and statement timeouts, so a probe never waits on
the app's rows for long and never leaves anything behind. What the write did is read back as
the tool, still inside that savepoint.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
        """The claims of the token the request carries: the anon key's own claims, or a
        Supabase access token's for a signed-in user (without user-editable metadata: a
        policy that trusts it is judged from the catalogs)."""
        now = int(time.time())
        if self.sub is None:
            claims: dict[str, Any] = {
                "iss": "supabase",
                "ref": "tokenfix-probe",
                "role": self.role,
                "iat": now,
                "exp": now + 3600,
            }
        else:
            claims = {
                "iss": "https://tokenfix-probe.supabase.co/auth/v1",
                "sub": self.sub,
                "aud": "authenticated",
                "exp": now + 3600,
                "iat": now,
                "email": "",
                "phone": "",
                "role": self.role,
                "aal": "aal1",
                "amr": [{"method": "password", "timestamp": now}],
                "session_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tokenfix-probe:{self.sub}")),
                "is_anonymous": False,
                "app_metadata": {"provider": "email", "providers": ["email"]},
                "user_metadata": {},
            }
        return json.dumps(claims)


# The headers a supabase-js request carries, without the keys themselves.
HEADERS = json.dumps(
    {
        "accept": "application/json",
        "content-type": "application/json",
        "prefer": "return=minimal",
        "x-client-info": "tokenfix-doctor-probe",
    }
)


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
    method: str = "PATCH"
    """The HTTP method PostgREST would serve this write with (request.method)."""
    path: str = "/"
    """The request's path (request.path): the relation, as PostgREST names it."""
    unchanged: str = "a trigger kept the stored values"
    """Why rows touched without effect are no harm, as words ('the balance did not go up')."""
    reach: bool = False
    """A filterless write whose value fails at the first row it reaches: that failure
    (division by zero) means "reached a row", and nothing was written."""
    before: tuple[tuple[sql.Composed, dict[str, Any], str], ...] = ()
    """Statements run first, each as its own request with its method (a DELETE before a
    re-INSERT): their refusal is the write's; when one touches no row, the write is not
    attempted."""


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    rows: int
    detail: str
    """What happened, as words following the statement: 'touched 1 row and changed it'."""
    step: int = 0
    """How many of the write's `before` statements ran through: equal to their number when
    the write itself was attempted."""

    @property
    def conclusive(self) -> bool:
        return self.kind not in ("proves_nothing", "inconclusive")

    @property
    def took_effect(self) -> bool:
        return self.kind == "changed"


def request_path(relation: Any) -> str:
    """PostgREST's request.path for a write to `relation` (a QualifiedName): /name."""
    return "/" + str(relation.table_name)


def attempt(conn: psycopg.Connection[Any], claims: Claims, write: Write) -> Outcome:
    """Run `write` as `claims.role` and undo it, whatever happens."""
    with conn.transaction(savepoint_name="tokenfix_probe") as probe:
        conn.execute(
            queries.get("probe_begin"),
            {
                "lock_timeout": LOCK_TIMEOUT,
                "statement_timeout": STATEMENT_TIMEOUT,
                "claims": claims.as_json(),
                "method": write.method,
                "path": write.path,
                "headers": HEADERS,
                "cookies": "{}",
            },
        )
        conn.execute(queries.compose("probe_as_role", role=sql.Identifier(claims.role)))
        step = 0
        try:
            # A nested savepoint, so that an error leaves the probe's own savepoint usable.
            with conn.transaction(savepoint_name="tokenfix_attempt"):
                rows = 1
                for statement, params, method in write.before:
                    conn.execute(queries.get("probe_method"), {"method": method})
                    rows = min(rows, conn.execute(statement, params).rowcount)
                    step += rows > 0
                if rows > 0:
                    conn.execute(queries.get("probe_method"), {"method": write.method})
                    rows = conn.execute(write.statement, write.params).rowcount
        except psycopg.Error as exc:
            if conn.broken:
                raise
            outcome = classify(exc, write)
        else:
            conn.execute(queries.get("probe_end"))
            outcome = _effect(conn, max(rows, 0), write)
        raise psycopg.Rollback(probe)
    return replace(outcome, step=step)


def _rows(n: int) -> str:
    return f"touched {n} row{'' if n == 1 else 's'}"


def _effect(conn: psycopg.Connection[Any], rows: int, write: Write) -> Outcome:
    if rows == 0:
        return Outcome("no_rows", 0, _rows(0))
    if write.took_effect is None or write.took_effect(conn):
        return Outcome("changed", rows, f"{_rows(rows)} and took effect (rolled back)")
    return Outcome("unchanged", rows, f"{_rows(rows)}, but {write.unchanged} (rolled back)")


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
    if write.reach and state == "22012":
        return Outcome("changed", 1, "reached a row (stopped before writing it; rolled back)")
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
