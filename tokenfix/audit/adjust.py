"""Support adjustments go through the ledger (docs/commands.md, support adjustments).

`tokenfix grant KEY AMOUNT` / `deduct`: one transaction, under the writer lease, inserts the
ledger row the mapping's [adjust] section describes, checks that the model counts it as a
grant (deduct) of exactly AMOUNT, and moves the owner's cache by exactly AMOUNT with
compare-and-set on the values read under lock; the run, the cache change and the inserted row
are recorded in the audit trail in that same transaction. Drift the owner already had is left
as it was and reported: a grant never wipes a hand edit. `revert` deletes the row and moves the
cache back, both or neither. `reconcile KEY… --direction ledger` books, instead, the row that
makes the ledger explain the cached remaining, leaving the cache as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tokenfix import queries
from tokenfix.audit import trail
from tokenfix.audit.lease import WriterLease
from tokenfix.base.errors import BadInput, DatabaseProblem, Declined
from tokenfix.base.records import Amount, Pair, RevertChange, exact
from tokenfix.config.settings import Settings, exact_amount
from tokenfix.db.session import Connection, require_primary, transaction
from tokenfix.ledger import keys, visibility
from tokenfix.ledger.model import BalanceModel, Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.types import Adjust, Mapping

Kind = Literal["grant", "deduct"]


@dataclass(frozen=True)
class Request:
    kind: Kind
    key: str
    amount: Amount
    reason: str
    idempotency_key: str | None = None
    create_missing: bool = False
    """An owner without a balance row gets one: its expected balance before, plus the amount."""


@dataclass
class Booking:
    """One owner's adjustment: the cache before and after, the drift it had (and keeps)."""

    key: str
    kind: Kind
    amount: Amount
    before: Pair
    after: Pair | None = None
    expected_before: Pair | None = None
    drift: Pair | None = None
    """cached − expected before the adjustment; the adjustment leaves it as it was."""
    ledger_row: dict[str, Any] | None = None
    applied: bool = False


@dataclass
class AdjustOutcome:
    run_id: uuid.UUID | None
    request: Request
    booking: Booking | None = None
    already_booked_by: uuid.UUID | None = None
    """The run that booked this idempotency key before: nothing was booked now."""
    reverted_by: uuid.UUID | None = None
    warnings: list[str] = field(default_factory=list)


def parse_request(
    kind: Kind, key: str, amount: str, reason: str, idempotency_key: str | None
) -> Request:
    """The command line, checked before anything connects (every refusal: exit 2)."""
    try:
        value = exact_amount(amount)
    except ValueError:
        raise BadInput(f"AMOUNT {amount!r} is not a number; give a positive amount") from None
    if value <= 0:
        raise BadInput(
            f"AMOUNT {amount} is not positive: {kind} takes a positive amount "
            f"(use '{'deduct' if kind == 'grant' else 'grant'}' for the other direction)"
        )
    if not reason.strip():
        raise BadInput(f"--reason is empty: say why this {kind} is made (it is kept in the audit)")
    if idempotency_key is not None and not idempotency_key.strip():
        raise BadInput("--idempotency-key is empty")
    return Request(kind, key.strip(), value, reason.strip(), idempotency_key)


def require_adjust(mapping: Mapping) -> Adjust:
    if mapping.adjust is None:
        raise BadInput(
            f"{mapping.origin} has no [adjust] section: it does not say which ledger row a "
            "grant or deduct inserts; nothing was written",
            hint='add [adjust] with ledger = "<a [[ledger]] name>" and [adjust.grant] / '
            "[adjust.deduct] tables of column = expression (docs/mapping.md)",
        )
    if not mapping.balance.compared_columns:
        raise BadInput(f"{mapping.origin} has no [balance.write] that carries the balance")
    return mapping.adjust


def _source_index(model: BalanceModel, adjust: Adjust) -> int:
    return next(i for i, s in enumerate(model.mapping.ledgers) if s.name == adjust.ledger)


def _signed(kind: Kind, amount: Amount) -> Amount:
    return amount if kind == "grant" else -amount


# -- reading one owner -------------------------------------------------------------------


@dataclass(frozen=True)
class _Owner:
    key: str
    current: Pair
    expected: Pair
    written: dict[str, Any]
    """The compared written columns under lock: the compare-and-set's expectation."""
    recent: bool = False
    """Ledger rows inside the settle window: the app may not have moved the cache yet."""


def _read(
    conn: Connection,
    model: BalanceModel,
    key: str,
    *,
    missing: bool = False,
    settle: timedelta = timedelta(0),
) -> dict[str, Any] | None:
    """The owner as the balance statement sees it: with a balance row (or, `missing`, also
    an owner with ledger rows only; one with neither is its starting balance), and whether
    it has ledger rows newer than `settle`."""
    statement, params = model.with_recent("recompute", Selection(keys=(key,)), settle)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = [r for r in cur.execute(statement, params).fetchall() if missing or r["has_profile"]]
    if not rows and missing:
        return {"has_profile": False, "current_remaining": None, "current_used": None,
                "expected_remaining": model.starting_balance, "expected_used": 0,
                "recent": False}  # fmt: skip
    return rows[0] if rows else None


def _lock_and_read(
    conn: Connection, model: BalanceModel, key: str, settle: timedelta = timedelta(0)
) -> _Owner | None:
    locked = conn.execute(model.lock(), {"keys": [key]}).fetchone()
    row = _read(conn, model, key, settle=settle) if locked is not None else None
    if locked is None or row is None:
        return None
    return _Owner(
        key,
        Pair.of(row["current_remaining"], row["current_used"]),
        Pair.of(row["expected_remaining"], row["expected_used"]),
        locked[1],
        bool(row["recent"]),
    )


def _checked_key(conn: Connection, model: BalanceModel, key: str) -> str:
    with transaction(conn, model.settings, read_only=True):
        return keys.check(conn, [key], model.shape.key)[0]


def _require_owner(
    conn: Connection, model: BalanceModel, key: str, *, create_missing: bool = False
) -> dict[str, Any]:
    """The owner's balance row as read now; none (without `create_missing`), or a NULL cache,
    is bad input (exit 2)."""
    with transaction(conn, model.settings, read_only=True):
        row = _read(conn, model, key, missing=create_missing)
    b = model.mapping.balance
    if row is None:
        raise BadInput(
            f"no balance row for {key} in {b.table}: nothing was written",
            hint="check the key; --create-missing creates the balance row (its ledger's "
            "balance, plus the amount)",
        )
    if not row["has_profile"]:
        if b.create is None:
            raise BadInput(
                "--create-missing needs a [balance.create] section in the mapping: how a new "
                "balance row is made"
            )
        return row
    if row["current_remaining"] is None or (b.used is not None and row["current_used"] is None):
        raise BadInput(
            f"the cached balance of {key} is NULL: an adjustment cannot move it by an amount; "
            "nothing was written",
            hint=f"'tokenfix reconcile {key} --yes' sets it from the ledger first",
        )
    return row


# -- writing -----------------------------------------------------------------------------


@dataclass
class _Statements:
    model: BalanceModel
    adjust: Adjust
    index: int

    @property
    def source(self) -> Any:
        return self.model.mapping.ledgers[self.index]

    def insert(self, kind: Kind) -> tuple[sql.Composed, dict[str, Any]]:
        columns = self.adjust.grant if kind == "grant" else self.adjust.deduct
        params = {k: v for _, e in columns for k, v in e.params.items()}
        statement = queries.compose(
            "adjust_insert",
            table=self.source.table.identifier,
            columns=sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns),
            values=sql.SQL(", ").join(sql.SQL("({})").format(e.sql) for _, e in columns),
            key_type=self.model.key_type,
        )
        return statement, params

    def delete(self, name: str = "adjust_delete") -> sql.Composed:
        return queries.compose(
            name,
            table=self.source.table.identifier,
            key=sql.SQL("({})").format(self.source.key.sql),
            key_type=sql.SQL(self.model.shape.source(self.index).key),
        )


def _book_row(
    conn: Connection,
    stmts: _Statements,
    kind: Kind,
    owner: _Owner,
    amount: Amount,
    *,
    run_id: uuid.UUID,
    reason: str,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], Pair]:
    """Insert the ledger row; check the model counts it as exactly `amount` of `kind`."""
    statement, params = stmts.insert(kind)
    params |= {
        "adjust_key": owner.key,
        "adjust_amount": str(amount),
        "adjust_reason": reason,
        "adjust_run_id": run_id,
        "adjust_idempotency_key": idempotency_key,
    }
    try:
        with conn.transaction():
            found = conn.execute(statement, params).fetchone()
    except (psycopg.IntegrityError, psycopg.errors.DataError) as exc:
        raise DatabaseProblem(
            f"inserting the {kind} row into {stmts.source.table} was rejected: "
            f"{(exc.diag.message_primary or str(exc)).strip()}; nothing was written",
            hint="check the [adjust] expressions against the ledger's constraints",
        ) from None
    assert found is not None
    row = _read(conn, stmts.model, owner.key, missing=True)
    assert row is not None
    expected = Pair.of(row["expected_remaining"], row["expected_used"])
    moved = Decimal(expected.tokens_remaining or 0) - Decimal(owner.expected.tokens_remaining or 0)
    if moved != _signed(kind, amount) or expected.tokens_used != owner.expected.tokens_used:
        raise BadInput(
            f"the {kind} row [adjust] inserts into {stmts.source.name} is not counted as a "
            f"{kind} of {amount} (the ledger's remaining moved by {exact(moved)}); "
            "nothing was written",
            hint="the [adjust] expressions must give a row the [[ledger]]'s counted, amount and "
            f"kind read as a {kind} ('tokenfix diagnose KEY --ledger 5' shows how rows read)",
        )
    return found[0], expected


def _move_cache(
    conn: Connection,
    model: BalanceModel,
    owner: _Owner,
    new_remaining: Amount,
    *,
    run_id: uuid.UUID,
    origin: trail.Origin,
    creates: bool = False,
) -> Pair:
    """Write the owner's cache as remaining = new_remaining (used as it is), compare-and-set
    on what was read under lock (`creates`: insert the missing balance row, with used as the
    ledger says); the audit row is written by the same statement."""
    used = owner.current.tokens_used
    if model.mapping.balance.used is None or creates:
        used = owner.expected.tokens_used
    params = {
        "keys": [owner.key],
        "actions": ["insert" if creates else "update"],
        "befores": [None if creates else Jsonb(owner.written)],
        "expected_remaining": [str(new_remaining)],
        "expected_used": [None if used is None else str(used)],
        "run_id": run_id,
        "tool_version": origin.tool_version,
        "host": origin.host,
        **model.mapping.params(),
    }
    statement = model.write_batch(trail.table(model.settings, "changes"), creates=creates)
    rows = conn.execute(statement, params).fetchall()
    if not rows:
        raise DatabaseProblem(
            f"the balance row of {owner.key} changed (or was created) meanwhile; nothing was "
            "written",
            hint="run the command again",
        )
    stored = Pair.of(rows[0][1], rows[0][2] if model.mapping.balance.used else None)
    if stored.tokens_remaining != exact(new_remaining):
        raise DatabaseProblem(
            f"{model.mapping.balance.table} stored {stored.tokens_remaining} instead of "
            f"{new_remaining} for {owner.key} (a trigger or rule?); nothing was written",
            hint="an adjustment must move the cache by exactly its amount",
        )
    return stored


def _record(
    conn: Connection,
    settings: Settings,
    run_id: uuid.UUID,
    key: str,
    adjustment: dict[str, Any],
    *,
    action: str | None = None,
    origin: trail.Origin | None = None,
    written: dict[str, Any] | None = None,
) -> None:
    """The adjustment on the owner's audit row (a new row when the cache was not written)."""
    changes = trail.table(settings, "changes")
    if origin is None:
        conn.execute(
            sql.SQL(
                "UPDATE {} SET adjustment = %(adjustment)s,"
                " action = coalesce(%(action)s, action)"
                " WHERE run_id = %(run_id)s AND key = %(key)s"
            ).format(changes),
            {"adjustment": Jsonb(adjustment), "action": action, "run_id": run_id, "key": key},
        )
        return
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (run_id, key, action, before, after, adjustment, tool_version, host)"
            " VALUES (%(run_id)s, %(key)s, %(action)s, %(written)s, %(written)s, %(adjustment)s,"
            " %(tool_version)s, %(host)s)"
        ).format(changes),
        {
            "run_id": run_id,
            "key": key,
            "action": action,
            "written": Jsonb(written),
            "adjustment": Jsonb(adjustment),
            "tool_version": origin.tool_version,
            "host": origin.host,
        },
    )


def _start(
    conn: Connection,
    settings: Settings,
    mapping: Mapping,
    *,
    run_id: uuid.UUID,
    command: str,
    origin: trail.Origin,
    options: dict[str, Any],
    reverts_run_id: uuid.UUID | None = None,
) -> None:
    """The run's audit row, inside the caller's transaction: a refused adjustment leaves no
    run behind."""
    conn.execute(
        trail.compose("run_start", settings),
        {
            "run_id": run_id,
            "command": command,
            "reverts_run_id": reverts_run_id,
            "tool_version": origin.tool_version,
            "host": origin.host,
            "pid": origin.pid,
            "options": Jsonb(options),
            "balance_table": str(mapping.balance.table),
            "balance_key": mapping.balance.key,
            "mapping_hash": mapping.balance_hash(),
        },
    )


def _finish(conn: Connection, settings: Settings, run_id: uuid.UUID, **counts: int) -> None:
    params: dict[str, Any] = {
        "run_id": run_id,
        "status": "completed",
        "error": None,
        "users_checked": None,
        "users_updated": None,
        "profiles_created": None,
        "profiles_deleted": None,
        "users_deferred": None,
        "users_changed": None,
        **counts,
    }
    conn.execute(trail.compose("run_finish", settings), params)


def already_booked(
    conn: Connection, settings: Settings, idempotency_key: str
) -> dict[str, Any] | None:
    with transaction(conn, settings, read_only=True):
        if not trail.exists(conn, settings):
            return None
        fragments = trail.read_fragments(conn, settings)
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                queries.compose("adjust_booked", **fragments),
                {"idempotency_key": idempotency_key},
            ).fetchone()


def _same_request(found: dict[str, Any], request: Request) -> None:
    booked = found["adjustment"]
    same = (
        booked.get("kind") == request.kind
        and found["key"] == request.key
        and Decimal(str(booked.get("amount"))) == Decimal(request.amount)
    )
    if not same:
        raise BadInput(
            f"idempotency key {request.idempotency_key!r} was used by run {found['run_id']} for "
            f"a {booked.get('kind')} of {booked.get('amount')} to {found['key']}, not this "
            f"{request.kind} of {request.amount} to {request.key}; nothing was written",
            hint="give each adjustment its own idempotency key",
        )


def adjust(
    conn: Connection,
    settings: Settings,
    request: Request,
    *,
    mapping: Mapping | None = None,
    confirm: Callable[[AdjustOutcome], bool] | None = None,
) -> AdjustOutcome:
    """Book a grant or deduct for one owner and move its cache by exactly the amount."""
    model = load_model(conn, settings, mapping)
    adjust_section = require_adjust(model.mapping)
    key = _checked_key(conn, model, request.key)
    request = replace(request, key=key)
    row = _require_owner(conn, model, key, create_missing=request.create_missing)
    outcome = AdjustOutcome(None, request)
    if request.idempotency_key is not None:
        found = already_booked(conn, settings, request.idempotency_key)
        if found is not None:
            _same_request(found, request)
            outcome.already_booked_by, outcome.reverted_by = found["run_id"], found["reverted_by"]
            return outcome
    require_primary(conn)
    visibility.require_every_row(conn, settings, model.mapping)
    current = Pair.of(row["current_remaining"], row["current_used"])
    outcome.booking = _preview(model, request, current, row)
    if confirm is not None and not confirm(outcome):
        raise Declined("nothing was written")
    stmts = _Statements(model, adjust_section, _source_index(model, adjust_section))
    origin = trail.Origin.here()
    run_id = uuid.uuid4()
    with WriterLease(conn, settings, command=request.kind, run_id=run_id, origin=origin) as lease:
        if request.idempotency_key is not None:  # again, under the lease: no twin in between
            found = already_booked(conn, settings, request.idempotency_key)
            if found is not None:
                _same_request(found, request)
                outcome.already_booked_by = found["run_id"]
                outcome.reverted_by = found["reverted_by"]
                outcome.booking = None
                return outcome
        with transaction(conn, settings):
            options = {
                "reason": request.reason,
                "amount": str(request.amount),
                "key": key,
                "idempotency_key": request.idempotency_key,
            }
            _start(
                conn,
                settings,
                model.mapping,
                run_id=run_id,
                command=request.kind,
                origin=origin,
                options=options,
            )
            owner = _lock_and_read(conn, model, key)
            creates = owner is None and request.create_missing
            if creates:
                missing = _read(conn, model, key, missing=True)
                assert missing is not None
                expected = Pair.of(missing["expected_remaining"], missing["expected_used"])
                owner = _Owner(key, Pair(None, None), expected, {})
            if owner is None or (owner.current.tokens_remaining is None and not creates):
                raise BadInput(f"the balance row of {key} is gone; nothing was written")
            ledger_row, _ = _book_row(
                conn,
                stmts,
                request.kind,
                owner,
                request.amount,
                run_id=run_id,
                reason=request.reason,
                idempotency_key=request.idempotency_key,
            )
            lease.renew(conn)
            start = owner.expected if creates else owner.current
            new_remaining = exact(
                Decimal(start.tokens_remaining or 0)
                + Decimal(_signed(request.kind, request.amount))
            )
            stored = _move_cache(
                conn, model, owner, new_remaining, run_id=run_id, origin=origin, creates=creates
            )
            _record(
                conn,
                settings,
                run_id,
                key,
                _adjustment(
                    stmts,
                    request.kind,
                    request.amount,
                    request.reason,
                    request.idempotency_key,
                    ledger_row,
                    cache_moved=True,
                ),
            )
            _finish(conn, settings, run_id, users_checked=1, users_updated=1)
    outcome.run_id = run_id
    outcome.booking = Booking(
        key,
        request.kind,
        request.amount,
        owner.current,
        stored,
        owner.expected,
        _drift(owner.current, owner.expected),
        ledger_row,
        applied=True,
    )
    return outcome


def _adjustment(
    stmts: _Statements,
    kind: Kind,
    amount: Amount,
    reason: str,
    idempotency_key: str | None,
    row: dict[str, Any],
    *,
    cache_moved: bool,
) -> dict[str, Any]:
    return {
        "ledger": stmts.source.name,
        "table": str(stmts.source.table),
        "kind": kind,
        "amount": str(amount),
        "reason": reason,
        "idempotency_key": idempotency_key,
        "row": row,
        "cache_moved": cache_moved,
    }


def _drift(current: Pair, expected: Pair) -> Pair:
    def minus(a: Amount | None, b: Amount | None) -> Amount | None:
        return None if a is None or b is None else exact(Decimal(a) - Decimal(b))

    return Pair(
        minus(current.tokens_remaining, expected.tokens_remaining),
        minus(current.tokens_used, expected.tokens_used),
    )


def _preview(model: BalanceModel, request: Request, current: Pair, row: dict[str, Any]) -> Booking:
    expected = Pair.of(row["expected_remaining"], row["expected_used"])
    start = current if row["has_profile"] else expected  # a created row starts at the ledger's
    after = exact(
        Decimal(start.tokens_remaining or 0) + Decimal(_signed(request.kind, request.amount))
    )
    return Booking(
        request.key,
        request.kind,
        request.amount,
        current,
        Pair(after, start.tokens_used),
        expected,
        _drift(current, expected),
    )


# -- reconcile --direction ledger --------------------------------------------------------


@dataclass
class LedgerOutcome:
    run_id: uuid.UUID | None
    dry_run: bool
    reason: str
    bookings: list[Booking] = field(default_factory=list)
    """One per owner whose remaining the ledger does not explain (booked, or to book)."""
    users_checked: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Owners left alone, with why (a NULL cache, no balance row)."""


RECENT = "recent activity: deferred (--settle), the app may not have moved the cache yet"


def _needed(current: Pair, expected: Pair) -> tuple[Kind, Amount] | None:
    if current.tokens_remaining is None or expected.tokens_remaining is None:
        return None
    gap = Decimal(current.tokens_remaining) - Decimal(expected.tokens_remaining)
    if gap == 0:
        return None
    return ("grant", exact(gap)) if gap > 0 else ("deduct", exact(-gap))


def book_to_ledger(
    conn: Connection,
    settings: Settings,
    given: Sequence[str],
    reason: str,
    *,
    mapping: Mapping | None = None,
    dry_run: bool = False,
    settle: timedelta = timedelta(minutes=2),
    confirm: Callable[[LedgerOutcome], bool] | None = None,
) -> LedgerOutcome:
    """Book, for each owner, the grant or deduct that makes the ledger explain the cached
    remaining (drift in used is reported, never booked); the cache is not written. An owner
    with ledger rows newer than `settle` is left alone: its cache may be about to follow."""
    if not reason.strip():
        raise BadInput("--direction ledger needs --reason TEXT: it is kept in the audit")
    model = load_model(conn, settings, mapping)
    adjust_section = require_adjust(model.mapping)
    with transaction(conn, settings, read_only=True):
        checked = list(dict.fromkeys(keys.check(conn, list(given), model.shape.key)))
    outcome = LedgerOutcome(None, dry_run, reason.strip(), users_checked=len(checked))
    with transaction(conn, settings, read_only=True):
        for key in checked:
            row = _read(conn, model, key, settle=settle)
            if row is None:
                outcome.skipped.append((key, "no balance row"))
                continue
            current = Pair.of(row["current_remaining"], row["current_used"])
            expected = Pair.of(row["expected_remaining"], row["expected_used"])
            need = _needed(current, expected)
            if current.tokens_remaining is None:
                outcome.skipped.append((key, "NULL cached remaining"))
            elif need is not None and row["recent"]:
                outcome.skipped.append((key, RECENT))
            elif need is not None:
                outcome.bookings.append(
                    Booking(
                        key, need[0], need[1], current, current, expected, _drift(current, expected)
                    )
                )
    if dry_run or not outcome.bookings:
        return outcome
    require_primary(conn)
    visibility.require_every_row(conn, settings, model.mapping)
    if confirm is not None and not confirm(outcome):
        raise Declined("nothing was written")
    stmts = _Statements(model, adjust_section, _source_index(model, adjust_section))
    origin = trail.Origin.here()
    run_id = uuid.uuid4()
    planned = outcome.bookings
    outcome.bookings = []
    with (
        WriterLease(conn, settings, command="reconcile", run_id=run_id, origin=origin) as lease,
        transaction(conn, settings),
    ):
        _start(
            conn,
            settings,
            model.mapping,
            run_id=run_id,
            command="reconcile",
            origin=origin,
            options={"direction": "ledger", "reason": outcome.reason, "user_ids": len(checked)},
        )
        for plan in planned:
            owner = _lock_and_read(conn, model, plan.key, settle)
            need = _needed(owner.current, owner.expected) if owner else None
            if owner is None or need is None:
                continue  # explained meanwhile (a second run books nothing)
            if owner.recent:
                outcome.skipped.append((plan.key, RECENT))
                continue
            kind, amount = need
            ledger_row, _ = _book_row(
                conn,
                stmts,
                kind,
                owner,
                amount,
                run_id=run_id,
                reason=outcome.reason,
                idempotency_key=None,
            )
            adjustment = _adjustment(
                stmts, kind, amount, outcome.reason, None, ledger_row, cache_moved=False
            )
            _record(
                conn,
                settings,
                run_id,
                owner.key,
                adjustment,
                action="book",
                origin=origin,
                written=owner.written,
            )
            outcome.bookings.append(
                Booking(
                    owner.key,
                    kind,
                    amount,
                    owner.current,
                    owner.current,
                    owner.expected,
                    _drift(owner.current, owner.expected),
                    ledger_row,
                    applied=True,
                )
            )
        lease.renew(conn)
        _finish(conn, settings, run_id, users_checked=len(checked), users_updated=0)
    outcome.run_id = run_id
    return outcome


# -- what diagnose shows ----------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    """One support adjustment of an owner, as the audit trail keeps it."""

    run_id: uuid.UUID
    command: str
    changed_at: Any
    kind: str
    amount: Amount
    reason: str | None
    idempotency_key: str | None
    ledger: str | None
    reverted_by: uuid.UUID | None


def adjustments_of(
    conn: Connection, settings: Settings, key: str, limit: int = 50
) -> list[Adjustment]:
    """The owner's adjustments the audit knows (none without an audit schema), newest first."""
    with transaction(conn, settings, read_only=True):
        if not trail.exists(conn, settings):
            return []
        fragments = trail.read_fragments(conn, settings)
        rows = conn.execute(
            queries.compose("adjust_history", **fragments), {"key": key, "limit": limit}
        ).fetchall()
    return [
        Adjustment(r[0], r[1], r[2], r[3], exact_amount(r[4]), r[5], r[6], r[7], r[8]) for r in rows
    ]


# -- revert ------------------------------------------------------------------------------


def is_adjustment_run(conn: Connection, settings: Settings, run_id: uuid.UUID) -> bool:
    with transaction(conn, settings, read_only=True):
        fragments = trail.read_fragments(conn, settings)
        row = conn.execute(
            sql.SQL(
                "SELECT EXISTS (SELECT FROM {} AS c"
                " WHERE c.run_id = %s AND c.adjustment IS NOT NULL)"
            ).format(fragments["changes"]),
            (run_id,),
        ).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class _Booked:
    key: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    adjustment: dict[str, Any]


def _booked_rows(
    conn: Connection, settings: Settings, run_id: uuid.UUID, key: str | None
) -> list[_Booked]:
    with transaction(conn, settings, read_only=True):
        rows = conn.execute(
            sql.SQL(
                "SELECT key, action, before, after, adjustment FROM {} WHERE run_id = %(run_id)s"
                " AND adjustment IS NOT NULL AND (%(key)s::text IS NULL OR key = %(key)s)"
                " ORDER BY key"
            ).format(trail.table(settings, "changes")),
            {"run_id": run_id, "key": key},
        ).fetchall()
    return [_Booked(*row) for row in rows]


def revert_adjustments(
    conn: Connection,
    model: BalanceModel,
    run_id: uuid.UUID,
    outcome: Any,
    *,
    key: str | None,
    confirm: Callable[[int], bool] | None,
) -> None:
    """Delete each row the run booked and (for grant/deduct) move the cache back by its
    amount: both or neither, per owner; an owner whose row changed, is referenced or is gone is
    left alone (reported). Fills the RevertOutcome `outcome`."""
    settings = model.settings
    booked = _booked_rows(conn, settings, run_id, key)
    if key is not None and not booked:
        raise BadInput(f"run {run_id} did not change user {key}: nothing to revert")
    adjust_section = require_adjust(model.mapping)
    stmts = _Statements(model, adjust_section, _source_index(model, adjust_section))
    if outcome.dry_run or not booked:
        with transaction(conn, settings, read_only=True):
            for b in booked:
                found = conn.execute(
                    stmts.delete("adjust_exists"), {"key": b.key, "row": Jsonb(b.adjustment["row"])}
                ).fetchone()
                still = bool(found and found[0])
                now = conn.execute(model.written_now(), {"keys": [b.key]}).fetchone()
                current = now[1] if now else None
                if still and b.adjustment.get("cache_moved") and not _movable(conn, model, b.key):
                    still = False  # no row, or a NULL cache, to move back: as _revert_one
                change = _revert_change(
                    b,
                    current,
                    _restored(b, current) if still else None,
                    skipped="dry_run" if still else _gone(outcome),
                )
                outcome.tally(change)
                outcome.changes.append(change)
        return
    require_primary(conn)
    if confirm is not None and not confirm(len(booked)):
        raise Declined("nothing was reverted")
    stmts = _Statements(model, adjust_section, _source_index(model, adjust_section))
    origin = trail.Origin.here()
    new_run = uuid.uuid4()
    with (
        WriterLease(conn, settings, command="revert", run_id=new_run, origin=origin) as lease,
        transaction(conn, settings),
    ):
        options: dict[str, Any] = {"run_id": str(run_id)}
        if key is not None:
            options["user"] = key
        _start(
            conn,
            settings,
            model.mapping,
            run_id=new_run,
            command="revert",
            origin=origin,
            options=options,
            reverts_run_id=run_id,
        )
        for b in booked:
            change = _revert_one(conn, model, stmts, b, new_run, origin)
            if change.skipped == "changed_since":
                change = replace(change, skipped=_gone(outcome))
            outcome.tally(change)
            outcome.changes.append(change)
        lease.renew(conn)
        _finish(
            conn,
            settings,
            new_run,
            users_updated=outcome.rows_restored,
            users_changed=outcome.rows_left_alone,
        )
    outcome.run_id = new_run


def _movable(conn: Connection, model: BalanceModel, key: str) -> bool:
    """Whether the owner has a balance row whose cache is not NULL (a revert moves it back)."""
    row = _read(conn, model, key)
    return row is not None and row["current_remaining"] is not None


def _restored(booked: _Booked, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a revert would leave in the written columns (a preview): the same, when the
    adjustment did not move the cache; what they were before it, when nothing moved them since;
    else each numeric column moved back by what the adjustment moved it, from where it is now.
    None when that cannot be told without the write (a column that is no number moved)."""
    if not booked.adjustment.get("cache_moved"):
        return current
    if current is None or booked.before is None or booked.after is None:
        return None
    if current == booked.after:
        return booked.before
    moved_back = {}
    for column, now in current.items():
        was, left = booked.before.get(column), booked.after.get(column)
        if was == left:
            moved_back[column] = now
            continue
        try:
            moved_back[column] = _same_kind(
                now, Decimal(str(now)) + Decimal(str(was)) - Decimal(str(left))
            )
        except (InvalidOperation, TypeError, ValueError):
            return None  # a flag or a text the write computes: only the write can tell
    return moved_back


def _same_kind(like: Any, value: Decimal) -> Any:
    """`value` as JSON gave `like`: an int stays an int (1,200 not 1200.0)."""
    return int(value) if isinstance(like, int) and value == value.to_integral_value() else value


def _revert_one(
    conn: Connection,
    model: BalanceModel,
    stmts: _Statements,
    booked: _Booked,
    new_run: uuid.UUID,
    origin: trail.Origin,
) -> RevertChange:
    a = booked.adjustment
    moved = bool(a.get("cache_moved"))
    owner = _lock_and_read(conn, model, booked.key)
    current = owner.written if owner else None
    if moved and (owner is None or owner.current.tokens_remaining is None):
        # No balance row, or a NULL one, to move back: both or neither, so neither.
        return _revert_change(booked, current, None, skipped="changed_since")
    try:
        with conn.transaction():
            deleted = conn.execute(
                stmts.delete(), {"key": booked.key, "row": Jsonb(a["row"])}
            ).fetchone()
    except psycopg.IntegrityError:
        return _revert_change(booked, current, None, skipped="referenced")
    if deleted is None:
        return _revert_change(booked, current, None, skipped="changed_since")
    undone = {**a, "reverted": True}
    if not moved:
        _record(
            conn,
            model.settings,
            new_run,
            booked.key,
            undone,
            action="unbook",
            origin=origin,
            written=current,
        )
        return _revert_change(booked, current, current, applied=True)
    assert owner is not None
    back = exact(
        Decimal(owner.current.tokens_remaining or 0)
        - Decimal(_signed(a["kind"], exact_amount(a["amount"])))
    )
    _move_cache(conn, model, owner, back, run_id=new_run, origin=origin)
    _record(conn, model.settings, new_run, booked.key, undone, action="restore")
    after = conn.execute(model.lock(), {"keys": [booked.key]}).fetchone()
    return _revert_change(booked, current, after[1] if after else None, applied=True)


def _gone(outcome: Any) -> Any:
    """Why a booked row that is no more is left alone: a revert already took it back, or it
    changed since."""
    return "already_restored" if outcome.already_reverted_by else "changed_since"


def _revert_change(
    booked: _Booked,
    current: dict[str, Any] | None,
    restore_to: dict[str, Any] | None,
    *,
    applied: bool = False,
    skipped: Any = None,
) -> RevertChange:
    return RevertChange(
        key=booked.key,
        action="restore",
        run_left=booked.after,
        current=current,
        restore_to=restore_to,
        applied=applied,
        skipped=skipped,
    )
