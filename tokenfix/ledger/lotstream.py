"""Lots on the database: each owner's rows streamed in key, time order (model.lots_stream),
folded one owner at a time (tokenfix.ledger.lots), compared with the cache.

Where the fold runs, and why: in the tool, not in SQL. The burn-down is a sequential fold
(each spend depends on what every earlier spend and expiry left), which a set-based query
cannot state without a recursive walk per owner, and the tool may not create functions on
the app's database. So PostgreSQL does what it is good at (read each source once, filter,
price, sort by owner and time, and sum the charges between two lot events of an owner, which
burn the lots exactly as their sum does: lots_stream.sql) and the tool folds the sorted
stream, about a row per lot, while the database is still sending it, holding one owner at a
time: memory stays flat however many owners there are. The rows it yields have the columns
of the set-based statements (`candidates`, `recompute`), so planning and the writer treat a
lots mapping like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg import pq, sql

from tokenfix.base.records import Amount, exact
from tokenfix.db.session import Connection
from tokenfix.ledger.lots import LAST, NEVER, Folded, Lot, Spend, fold
from tokenfix.ledger.model import BalanceModel, Selection


@dataclass
class Owner:
    """One owner's history as the stream gave it, folded."""

    key: str
    has_profile: bool = False
    current_remaining: Amount | None = None
    current_used: Amount | None = None
    starting: Amount | None = None
    tolerance: Amount = 0
    recent: bool = False
    lots: list[Lot] = field(default_factory=list)
    spends: list[Spend] = field(default_factory=list)
    charged: Amount = 0
    spent: Amount = 0
    """What the charges and deducts read so far burn (the stream's running total)."""
    folded: Folded | None = None

    @property
    def expected_remaining(self) -> Amount:
        assert self.folded is not None
        return exact(self.folded.expected_remaining)


def owners(
    conn: Connection,
    model: BalanceModel,
    selection: Selection,
    settle: timedelta = timedelta(0),
    *,
    stream: bool = True,
) -> Iterator[Owner]:
    """The selected owners in key order, each folded at the transaction's now()."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    statement, params = model.lots_stream(selection, settle)
    current: Owner | None = None
    current_key: Any = None
    for found in _rows(conn, statement, params, stream):
        if found[KEY] != current_key:
            if current is not None:
                yield _folded(current, model, now)
            current_key = found[KEY]
            current = Owner(key=current_key)
        assert current is not None
        _take(current, found)
    if current is not None:
        yield _folded(current, model, now)


def _rows(
    conn: Connection, statement: sql.Composed, params: dict[str, Any], stream: bool
) -> Iterator[tuple[Any, ...]]:
    """The stream's rows, in key, time order. One owner (diagnose): a plain query. Streamed:
    in chunks of rows (libpq 17 and later), which PostgreSQL sends while the fold runs, so
    the database and the fold work side by side and memory holds what the socket buffers;
    with an older libpq, a server-side cursor read in pages (each page computed only when
    asked: the two then take turns). Row by row (single-row mode, or COPY, one message a
    row) costs more per row in Python than the fold itself."""
    if not stream:
        yield from conn.execute(statement, params)
        return
    if pq.version() >= CHUNKED_LIBPQ:
        yield from conn.cursor(binary=True).stream(statement, params, size=PAGE)
        return
    cursor: Any = conn.cursor(name="tokenfix_lots")
    cursor.execute(statement, params)
    while page := cursor.fetchmany(PAGE):
        yield from page
    cursor.close()


PAGE = 5000
CHUNKED_LIBPQ = 170000
"""libpq's chunked rows mode (psycopg's stream(size=...)) needs libpq 17."""


# The columns of lots_stream.sql, by position.
(ROW_TYPE, KEY, AT, SOURCE, ID, AMOUNT, EXPIRES_AT, VOIDED_AT, PRIORITY, RECENT,
 CURRENT_REMAINING, CURRENT_USED, STARTING, TOLERANCE, SPENT, CHARGED) = range(16)  # fmt: skip
SPENDS = 4
"""The row_type of a run of charges and deducts (lots_stream.sql)."""


def _take(owner: Owner, row: tuple[Any, ...]) -> None:
    if row[RECENT]:
        owner.recent = True
    kind = row[ROW_TYPE]
    if kind == SPENDS:  # the charges and deducts since the last lot event, as one spend
        spent = row[SPENT]
        owner.spends.append(
            Spend(at=row[AT], amount=spent - owner.spent)  # a run: no id of its own
        )
        owner.spent = spent
        if row[CHARGED] is not None:
            owner.charged = row[CHARGED]
        return
    if kind == 0:
        owner.has_profile = True
        owner.current_remaining = row[CURRENT_REMAINING]
        owner.current_used = row[CURRENT_USED]
        owner.starting = row[STARTING]
        owner.tolerance = row[TOLERANCE] or 0
        return
    amount, at = row[AMOUNT], row[AT]
    if kind == 1:
        if amount is None or amount <= 0 or at is None:
            return  # an invalid lot counts for nothing
        priority = row[PRIORITY]
        owner.lots.append(
            Lot(
                name=row[SOURCE],
                id=_id(row[ID]),
                amount=amount,
                at=at,
                expires_at=row[EXPIRES_AT],
                voided_at=row[VOIDED_AT],
                priority=priority if priority is not None else 0,
            )
        )
        return
    # a ledger grant: a lot of priority 0 that never expires
    owner.lots.append(Lot(name=row[SOURCE], id=_id(row[ID]), amount=amount, at=at))


def _id(ident: Any) -> Any:
    """Ledger ids arrive as text: numbers compare as numbers."""
    if isinstance(ident, str) and ident.isdigit():
        return int(ident)
    return ident


def _folded(owner: Owner, model: BalanceModel, now: datetime) -> Owner:
    starting = owner.starting if owner.starting is not None else model.starting_balance
    lots, spends = owner.lots, owner.spends
    if starting > 0:
        lots.insert(0, Lot(name="starting", id=None, amount=starting, at=None, priority=LAST))
    elif starting < 0:  # owed from the start: overage the first lots pay off
        spends.insert(0, Spend(at=NEVER, amount=-starting))
    owner.lots = lots
    owner.folded = fold(lots, spends, now)
    return owner


def fold_alone(model: BalanceModel, key: str) -> Owner:
    """An owner with no row anywhere: `starting` alone (what diagnose shows for it)."""
    return _folded(Owner(key=key), model, datetime.now().astimezone())


def comparison(owner: Owner, model: BalanceModel) -> dict[str, Any]:
    """The owner as a row of the set-based `recompute` statement (and `candidates`)."""
    b = model.mapping.balance
    expected_remaining = owner.expected_remaining
    expected_used = exact(owner.charged)
    drift_remaining = drift_used = None
    attention = not owner.has_profile
    if owner.has_profile:
        if owner.current_remaining is not None:
            drift_remaining = exact(owner.current_remaining - expected_remaining)
        if owner.current_used is not None:
            drift_used = exact(owner.current_used - expected_used)
        tolerance = Decimal(owner.tolerance)
        for read, drift in ((b.remaining, drift_remaining), (b.used, drift_used)):
            if read is not None and (drift is None or abs(Decimal(drift)) > tolerance):
                attention = True
    return {
        "key": owner.key,
        "has_profile": owner.has_profile,
        "current_remaining": exact(owner.current_remaining),
        "current_used": exact(owner.current_used),
        "expected_remaining": expected_remaining,
        "expected_used": expected_used,
        "drift_remaining": drift_remaining,
        "drift_used": drift_used,
        "attention": attention,
        "recent": owner.recent,
    }


EXPIRY_NOT_APPLIED = "expiry_not_applied"


def expiry_not_applied(
    owner: Owner, drift_remaining: Amount | None, drift_used: Amount | None
) -> bool:
    """The drift is what one or more expired or voided lots forfeited (the latest ones, or
    any single one): the cache never took those remainders off. The fold knows the
    forfeits, so neither diagnose nor a reconcile run reads anything more to say so."""
    assert owner.folded is not None
    forfeits = sorted(owner.folded.forfeits, reverse=True)
    if drift_remaining is None or drift_remaining <= 0 or not forfeits:
        return False
    if drift_used not in (None, 0):
        return False
    if any(amount == drift_remaining for _, amount in forfeits):
        return True
    total: Amount = 0
    for _, amount in forfeits:  # the latest expiries first
        total += amount
        if total == drift_remaining:
            return True
    return False


def _off(read: object, current: Amount | None, expected: Amount, tolerance: Amount) -> bool:
    """A side the mapping reads that is NULL or off by more than the tolerance."""
    if read is None:
        return False
    if current is None:
        return True
    return bool(abs(Decimal(current) - Decimal(expected)) > Decimal(tolerance))


def candidates(
    conn: Connection, model: BalanceModel, selection: Selection, settle: timedelta
) -> Iterator[dict[str, Any]]:
    """The rows of the `candidates` statement: each owner needing attention, in key order
    (with `causes`: the codes the fold names, docs/monitoring.md), then one total row."""
    checked = 0
    cached: list[Amount] = [0, 0]
    expected: list[Amount] = [0, 0]
    b = model.mapping.balance
    for owner in owners(conn, model, selection, settle):
        checked += 1
        if owner.has_profile:
            # Most owners are in step: their totals and the check, without the row.
            assert owner.folded is not None
            remaining, used = owner.folded.expected_remaining, owner.charged
            cached[0] += owner.current_remaining or 0
            cached[1] += owner.current_used or 0
            expected[0] += remaining
            expected[1] += used
            tolerance = owner.tolerance
            if not (
                _off(b.remaining, owner.current_remaining, remaining, tolerance)
                or _off(b.used, owner.current_used, used, tolerance)
            ):
                continue
        row = comparison(owner, model)
        if row["attention"]:
            named = owner.has_profile and expiry_not_applied(
                owner, row["drift_remaining"], row["drift_used"]
            )
            yield {**row, "is_total": False, "causes": (EXPIRY_NOT_APPLIED,) if named else ()}
    cached, expected = [exact(x) for x in cached], [exact(x) for x in expected]
    yield {
        "is_total": True,
        "users_checked": checked,
        "cached_remaining_total": cached[0],
        "cached_used_total": cached[1],
        "expected_remaining_total": expected[0],
        "expected_used_total": expected[1],
    }
