"""One user's report (SPEC §4 diagnose): ledger summary, cached row, expected values, causes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from tokenfix import catalog
from tokenfix.causes import Cause, Evidence, StoppedUpdating, likely_causes
from tokenfix.db import transaction
from tokenfix.errors import BadInput
from tokenfix.model import BalanceModel, out_of_range_names_the_tables
from tokenfix.settings import Settings

Status = Literal["ok", "drift", "missing_profile", "not_found"]


@dataclass(frozen=True)
class Balance:
    tokens_remaining: int
    tokens_used: int


@dataclass(frozen=True)
class Drift:
    """cached - expected; None for a side whose cached value is NULL."""

    tokens_remaining: int | None
    tokens_used: int | None

    @property
    def none(self) -> bool:
        return self.tokens_remaining == 0 and self.tokens_used == 0


@dataclass(frozen=True)
class Profile:
    tokens_remaining: int | None
    """None: the cached value is NULL (drift, whatever the ledger says)."""
    tokens_used: int | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Usage:
    total_records: int
    total_tokens_logged: int
    failed_records: int
    zero_token_records: int
    invalid_records: int
    records_before_profile: int
    grant_records: int
    granted_tokens: int
    deduct_records: int
    deducted_tokens: int
    charge_records: int
    charged_tokens: int
    override_records: int
    override_token_difference: int
    first_activity: datetime | None
    last_activity: datetime | None


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    created_at: datetime
    action_type: str
    model_used: str | None
    tokens_used: int | None
    success: bool | None
    row_class: str
    effective: int
    expected_remaining: int


@dataclass(frozen=True)
class Diagnosis:
    user_id: uuid.UUID
    status: Status
    profile: Profile | None = None
    usage: Usage | None = None
    expected: Balance | None = None
    overdrawn: bool = False
    drift: Drift | None = None
    causes: tuple[Cause, ...] = ()
    ledger: tuple[LedgerEntry, ...] | None = None


def parse_user_id(text: str) -> uuid.UUID:
    """A user id as given on the command line; anything but a UUID is refused (exit 2)."""
    cleaned = text.strip()
    try:
        if len(cleaned) not in (32, 36):
            raise ValueError
        return uuid.UUID(cleaned)
    except ValueError:
        shown = "".join(ch if ch.isprintable() else "?" for ch in text)[:60]
        raise BadInput(f"not a valid user id: {shown!r} is not a UUID") from None


Connection = psycopg.Connection[tuple[Any, ...]]


def diagnose(
    conn: Connection, settings: Settings, user_id: uuid.UUID, *, ledger_rows: int = 0
) -> Diagnosis:
    """Everything SPEC §4 lists for one user, read in one snapshot."""
    with transaction(conn, settings, read_only=True, isolation="repeatable read"):
        tables = catalog.load(conn, settings)
        catalog.require_balance_tables(tables, settings)
        catalog.check_starting_balance(tables, settings)
        model = BalanceModel.load(conn, settings, tables)
        with out_of_range_names_the_tables(model):
            return _diagnose(conn, model, user_id, ledger_rows)


def _diagnose(
    conn: Connection, model: BalanceModel, user_id: uuid.UUID, ledger_rows: int
) -> Diagnosis:
    params = {**model.params(), "user_id": user_id}
    profile = _profile(conn, model, params)
    params["profile_created_at"] = profile.created_at if profile else None
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(model.compose("user_usage"), params).fetchone()
    assert row is not None  # an aggregate always returns one row
    if profile is None and row["total_records"] == 0:
        return Diagnosis(user_id=user_id, status="not_found")

    usage = Usage(**{key: row[key] for key in Usage.__dataclass_fields__})
    starting = model.settings.starting_balance
    expected = Balance(
        tokens_remaining=starting
        + usage.granted_tokens
        - usage.deducted_tokens
        - usage.charged_tokens,
        tokens_used=usage.charged_tokens,
    )
    drift = None
    causes: tuple[Cause, ...] = ()
    if profile is None:
        status: Status = "missing_profile"
    else:
        drift = Drift(
            tokens_remaining=_minus(profile.tokens_remaining, expected.tokens_remaining),
            tokens_used=_minus(profile.tokens_used, expected.tokens_used),
        )
        status = "ok" if drift.none else "drift"
        if drift.tokens_remaining is not None and drift.tokens_used is not None and not drift.none:
            known = Balance(drift.tokens_remaining, drift.tokens_used)
            causes = tuple(likely_causes(_evidence(conn, model, params, row, known)))
    ledger = _ledger(conn, model, params, ledger_rows) if ledger_rows > 0 else None
    return Diagnosis(
        user_id=user_id,
        status=status,
        profile=profile,
        usage=usage,
        expected=expected,
        overdrawn=expected.tokens_remaining < 0,
        drift=drift,
        causes=causes,
        ledger=ledger,
    )


def _minus(cached: int | None, expected: int) -> int | None:
    return None if cached is None else cached - expected


def _profile(conn: Connection, model: BalanceModel, params: dict[str, Any]) -> Profile | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(model.compose("profile"), params).fetchone()
    return Profile(**row) if row else None


def _evidence(
    conn: Connection,
    model: BalanceModel,
    params: dict[str, Any],
    row: dict[str, Any],
    drift: Balance,
) -> Evidence:
    return Evidence(
        drift_remaining=drift.tokens_remaining,
        drift_used=drift.tokens_used,
        starting_balance=model.settings.starting_balance,
        granted=row["granted_tokens"],
        deducted=row["deducted_tokens"],
        override_records=row["override_records"],
        override_difference=row["override_token_difference"],
        before_profile_records=row["records_before_profile"],
        before_profile_remaining=row["granted_before_profile"]
        - row["deducted_before_profile"]
        - row["charged_before_profile"],
        before_profile_used=row["charged_before_profile"],
        failed_charge_tokens=row["failed_charge_tokens"],
        failed_charge_tokens_priced=row["failed_charge_tokens_priced"],
        stopped_updating=_stopped_updating(conn, model, params, drift),
    )


def _stopped_updating(
    conn: Connection, model: BalanceModel, params: dict[str, Any], drift: Balance
) -> StoppedUpdating | None:
    # Only a cache that missed charges shows more remaining and exactly that much less used.
    if drift.tokens_remaining <= 0 or drift.tokens_used != -drift.tokens_remaining:
        return None
    found = conn.execute(
        model.compose("stopped_updating"), {**params, "missing": drift.tokens_remaining}
    ).fetchone()
    return StoppedUpdating(since=found[0], charges=found[1], tokens=found[2]) if found else None


def _ledger(
    conn: Connection, model: BalanceModel, params: dict[str, Any], limit: int
) -> tuple[LedgerEntry, ...]:
    rows = conn.execute(model.compose("user_ledger"), {**params, "limit": limit}).fetchall()
    return tuple(LedgerEntry(*row) for row in rows)
