"""`tokenfix init`: a draft mapping (docs/mapping.md) guessed from the catalogs, every guess marked.

The guesses are by name and type, the way an engineer new to the schema would read it: a
balance table is one with a unique key and numeric columns named like a balance; a ledger is
a table with a column that matches that key (by foreign key or by name), an amount and a
time. A small sample of rows (never more than a few thousand) tells the values of a type or
status column and whether amounts are signed. Where nothing fits, the draft says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from tokenfix import queries
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, transaction
from tokenfix.mapping.file import _string
from tokenfix.mapping.types import shown_identifier

BALANCE_NAME = re.compile(r"credit|balance|token|quota|remaining|used|spent|consumed|acquired")
REMAINING_NAME = re.compile(r"remaining|balance|credits?$|tokens?$|quota|available")
USED_NAME = re.compile(r"used|spent|consumed")
ACQUIRED_NAME = re.compile(r"acquired|granted|purchased|total_credits|allotted")
OWNER_TABLE = re.compile(r"profile|wallet|account|balance|credit|user|customer|member|org")
AMOUNT_NAME = re.compile(r"amount|tokens_used|tokens|cost|credits|quantity|value|delta|usage")
TIME_NAME = re.compile(r"^(created_at|created|occurred_at|inserted_at|timestamp|ts|time|at)$")
KIND_NAME = re.compile(r"^(type|kind|direction|transaction_type|entry_type|action_type|action)$")
COUNTED_BOOL = re.compile(r"^(success|succeeded|is_success|ok|completed|is_completed)$")
ERROR_BOOL = re.compile(r"^(error|is_error|failed|is_failed)$")
SOFT_DELETE = re.compile(r"^(deleted_at|archived_at)$")
NUMBER = ("smallint", "integer", "bigint", "numeric", "real", "double precision")
GRANT_WORDS = ("purchase", "grant", "credit", "bonus", "refund", "topup", "top_up", "deposit",
               "reward", "signup", "gift", "refill", "subscription")  # fmt: skip
CHARGE_WORDS = ("usage", "use", "debit", "charge", "spend", "consume", "call", "request")
DEDUCT_WORDS = ("deduct", "expire", "expiry", "revoke", "adjust_down", "penalty")
DONE_WORDS = ("completed", "complete", "settled", "succeeded", "success", "done", "paid")
SAMPLE_ROWS = 5000


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: dict[str, str]
    required: set[str]
    unique_keys: list[str]
    foreign_keys: dict[str, str]
    """column -> 'schema.table.column' it references."""

    @property
    def qualified(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"

    def numeric(self) -> list[str]:
        return [c for c, t in self.columns.items() if t.split("(")[0] in NUMBER]

    def times(self) -> list[str]:
        return [c for c, t in self.columns.items() if t.startswith("timestamp")]


def _tables(conn: Connection, settings: Settings) -> list[TableInfo]:
    rows = conn.execute(
        queries.get("init_tables"), {"audit_schema": settings.audit_schema}
    ).fetchall()
    found = []
    for schema, name, _, columns, types, required, unique_keys, foreign_keys in rows:
        found.append(
            TableInfo(
                schema=schema,
                name=name,
                columns=dict(zip(columns, types, strict=True)),
                required={c for c, r in zip(columns, required, strict=True) if r},
                unique_keys=list(unique_keys),
                foreign_keys=dict(fk.split("=", 1) for fk in foreign_keys),
            )
        )
    return found


def _balance_score(table: TableInfo) -> int:
    if not table.unique_keys:
        return 0
    named = [c for c in table.numeric() if BALANCE_NAME.search(c) and c not in table.unique_keys]
    if not named:
        return 0
    return 10 * len(named) + (5 if OWNER_TABLE.search(table.name) else 0)


def _sample(conn: Connection, table: TableInfo, column: str) -> list[Any]:
    """The distinct values of `column` in a small sample of the table's rows."""
    statement = sql.SQL("SELECT DISTINCT s.v FROM (SELECT {} AS v FROM {} LIMIT {}) AS s").format(
        sql.Identifier(column), sql.Identifier(table.schema, table.name), sql.Literal(SAMPLE_ROWS)
    )
    try:
        with conn.transaction():
            return [row[0] for row in conn.execute(statement).fetchall()][:50]
    except Exception:  # a guess only: an unreadable sample is no sample
        return []


def _has_negative(conn: Connection, table: TableInfo, column: str) -> bool:
    values = [v for v in _sample(conn, table, column) if v is not None]
    return any(v < 0 for v in values)


@dataclass
class Draft:
    lines: list[str]

    def add(self, line: str = "", guess: str | None = None) -> None:
        self.lines.append(f"{line}  # guess: {guess}" if guess else line)


RESET_END = ("next_reset_at", "budget_reset_at", "reset_at", "current_period_end", "period_end",
             "renews_at", "next_refill_at")  # fmt: skip
PERIOD_START = ("current_period_start", "period_start", "last_reset_at")
EXPIRES = re.compile(r"^(expires_at|expiry|expires|expiration|expired_at|valid_until)$")
LOT_AT = ("effective_at", "starts_at", "start_at", "granted_at", "valid_from", "created_at")
VOIDED = ("voided_at", "revoked_at", "cancelled_at", "canceled_at")


def _periods(draft: Draft, table: TableInfo, *, allowed: bool) -> None:
    """period_start / period_end / period_length from reset or period columns."""
    times = table.times()
    start = next((c for c in PERIOD_START if c in times), None)
    end = next((c for c in RESET_END if c in times), None)
    duration = next((c for c, t in table.columns.items() if t.startswith("interval")), None)
    lines: list[tuple[str, str]] = []
    if start is not None:
        lines.append((f"period_start = {_string(shown_identifier(start))}", "the period's start"))
        if end is not None:
            lines.append((f"period_end = {_string(shown_identifier(end))}", "the next reset"))
        length = duration or (
            f"{shown_identifier(end)} - {shown_identifier(start)}" if end else None
        )
        if length is not None:
            lines.append((f"period_length = {_string(length)}", "the period's length"))
    elif end is not None and duration is not None:
        shown_end, shown_length = shown_identifier(end), shown_identifier(duration)
        lines += [
            (f"period_end = {_string(shown_end)}", "the next reset"),
            (
                f"period_start = {_string(f'{shown_end} - {shown_length}')}",
                "the last reset: the next one minus the period's length",
            ),
            (f"period_length = {_string(shown_length)}", "the period's length"),
        ]
    elif end is not None:
        draft.add(f"# {end} looks like the next reset: add period_end / period_start by hand")
    if lines and not allowed:
        draft.add("# periods and [[lots]] cannot be mapped together yet; lots were drafted:")
    for line, guess in lines:
        draft.add(line if allowed else f"# {line}", guess)


def _balance(
    draft: Draft, table: TableInfo, *, periods: bool = True, owner: str | None = None
) -> str:
    """The [balance] section; `owner`: a snapshot table's owner column (many rows per
    owner, the newest the balance: drafted with latest and row_id)."""
    key = owner or table.unique_keys[0]
    numeric = [c for c in table.numeric() if c not in (key, table.unique_keys[0])]
    remaining = next((c for c in numeric if REMAINING_NAME.search(c)), None)
    used = next((c for c in numeric if USED_NAME.search(c)), None)
    acquired = next((c for c in numeric if ACQUIRED_NAME.search(c)), None)
    draft.add("[balance]")
    if owner is None:
        draft.add(f"table = {_string(table.qualified)}", "a unique key and balance-like columns")
        draft.add(f"key = {_string(key)}", "its unique key")
    else:
        row_id = table.unique_keys[0]
        at = next((c for c in table.times() if TIME_NAME.match(c)), table.times()[0])
        order = f"{shown_identifier(at)} DESC, {shown_identifier(row_id)} DESC"
        draft.add(
            f"table = {_string(table.qualified)}",
            "several rows per owner, a time and a balance: snapshots, the newest current",
        )
        draft.add(f"key = {_string(key)}", "the owner: several rows each")
        draft.add(f"latest = {_string(order)}", "the newest row is the balance")
        draft.add(f"row_id = {_string(row_id)}", "its unique key: writes name the row by it")
    write: list[tuple[str, str]] = []
    if remaining is None and acquired is not None and used is not None:
        draft.add(
            f"remaining = {_string(f'{shown_identifier(acquired)} - {shown_identifier(used)}')}",
            "no remaining column: acquired minus used",
        )
        write.append((acquired, "expected_remaining + expected_used"))
    elif remaining is not None:
        draft.add(f"remaining = {_string(shown_identifier(remaining))}", "named like a balance")
        write.append((remaining, "expected_remaining"))
    if used is not None:
        draft.add(f"used = {_string(shown_identifier(used))}", "named like used tokens")
        write.append((used, "expected_used"))
    created = next((c for c in table.times() if re.match(r"created", c)), None)
    if created:
        draft.add(f"created_at = {_string(shown_identifier(created))}", "when the row was made")
    deleted = next((c for c in table.times() if SOFT_DELETE.match(c)), None)
    if deleted:
        draft.add(
            f"where = {_string(f'{shown_identifier(deleted)} IS NULL')}",
            "soft-deleted rows are not balances",
        )
    if any(c in table.columns for c in ("allowance", "included_usage", "quota", "limit")):
        allowance = next(c for c in ("allowance", "included_usage", "quota", "limit")
                         if c in table.columns)  # fmt: skip
        draft.add(f"starting = {_string(shown_identifier(allowance))}", "the period's allowance")
    else:
        draft.add(
            '# starting = "0"   # what an owner starts with (default: TOKENFIX_STARTING_BALANCE)'
        )
    _periods(draft, table, allowed=periods)
    draft.add()
    draft.add("[balance.write]")
    for column, expression in write:
        draft.add(f"{_key(column)} = {_string(expression)}")
    updated = next((c for c in table.times() if re.match(r"updated", c)), None)
    if updated:
        draft.add(f'{_key(updated)} = "now()"', "bookkeeping: written, never compared")
    draft.add()
    creatable = {key, *(c for c, _ in write)}
    missing = sorted(table.required - creatable)
    prefix = "# " if missing else ""
    if missing:
        draft.add(f"# [balance.create] needs values for {', '.join(missing)} too: check it")
    draft.add(f"{prefix}[balance.create]")
    draft.add(f'{prefix}{_key(key)} = "key"')
    for column, expression in write:
        draft.add(f"{prefix}{_key(column)} = {_string(expression)}")
    return key


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _string(name)


def _ledger_key(table: TableInfo, balance: TableInfo, key: str) -> str | None:
    target = f"{balance.schema}.{balance.name}.{key}"
    for column, references in table.foreign_keys.items():
        if references == target:
            return column
    singular = balance.name.rstrip("s")
    for name in (key, f"{singular}_{key}", f"{balance.name}_{key}", f"{singular}_id",
                 f"{balance.name}_id", "user_id", "owner_id", "wallet_id", "account_id",
                 "profile_id", "customer_id"):  # fmt: skip
        if (
            name in table.columns
            and name != next(iter(table.unique_keys), None)
            and name not in table.foreign_keys  # it points at another table's key
            and _casts(table.columns[name], balance.columns[key])
        ):
            return name
    return None


_INTEGERS = ("smallint", "integer", "bigint")
_TEXTS = ("text", "character varying", "character")


def _casts(source: str, key: str) -> bool:
    """Whether every value of type `source` is a value of the key's type (so a cast cannot
    fail on a row): the same type, integers to integers, text to text."""
    source, key = source.split("(")[0].strip(), key.split("(")[0].strip()
    return (
        source == key
        or all(t in _INTEGERS for t in (source, key))
        or (all(t in _TEXTS for t in (source, key)))
    )


def _many_per_owner(conn: Connection, table: TableInfo) -> bool:
    """Whether a sample of the table holds several rows for one owner (a column that
    references another table, or is named like an owner's id): a ledger or a history,
    never a balance table, whatever its columns are called."""
    unique = set(table.unique_keys)
    owners = [
        c
        for c in table.columns
        if c not in unique and (c in table.foreign_keys or re.search(r"_id$", c))
    ]
    for column in owners:
        statement = sql.SQL(
            "SELECT count(v) > count(DISTINCT v) FROM (SELECT {} AS v FROM {} LIMIT {}) AS s"
        ).format(
            sql.Identifier(column),
            sql.Identifier(table.schema, table.name),
            sql.Literal(SAMPLE_ROWS),
        )
        try:
            with conn.transaction():
                row = conn.execute(statement).fetchone()
        except Exception:  # a guess only: an unreadable sample says nothing
            continue
        if row and row[0]:
            return True
    return False


def _kind(conn: Connection, draft: Draft, table: TableInfo, amount: str) -> None:
    column = next((c for c in table.columns if KIND_NAME.match(c)), None)
    if column is None:
        if _has_negative(conn, table, amount):
            name = shown_identifier(amount)
            expression = f"CASE WHEN {name} > 0 THEN 'grant' WHEN {name} < 0 THEN 'charge' END"
            draft.add(
                f"kind = {_string(expression)}", "a signed amount: positive adds, negative spends"
            )
            return
        draft.add("kind = \"'charge'\"", "no type column: every row a charge; check it")
        return
    values = [str(v) for v in _sample(conn, table, column) if v is not None]
    branches, unknown = [], []
    for value in sorted(values):
        word = value.lower()
        kind = (
            "grant" if any(w in word for w in GRANT_WORDS)
            else "deduct" if any(w in word for w in DEDUCT_WORDS)
            else "charge" if any(w in word for w in CHARGE_WORDS)
            else None
        )  # fmt: skip
        if kind is None:
            unknown.append(value)
        else:
            literal = "'" + value.replace("'", "''") + "'"
            branches.append(f"WHEN {literal} THEN '{kind}'")
    name = shown_identifier(column)
    if branches:
        expression = f"CASE {name}::text {' '.join(branches)} END"
        note = f"from the values seen in {column}"
        if unknown:
            note += f"; could not guess kind for {', '.join(unknown[:5])}: check it"
        draft.add(f"kind = {_string(expression)}", note)
    else:
        expression = f"CASE {name}::text WHEN 'purchase' THEN 'grant' ELSE 'charge' END"
        draft.add(
            f"kind = {_string(expression)}",
            f"could not guess kind from the values of {column}: check it",
        )


def _counted(conn: Connection, draft: Draft, table: TableInfo) -> None:
    flag = next((c for c in table.columns if COUNTED_BOOL.match(c)), None)
    if flag and table.columns[flag] == "boolean":
        draft.add(f"counted = {_string(shown_identifier(flag))}", "a success flag")
        return
    error = next((c for c in table.columns if ERROR_BOOL.match(c)), None)
    if error and table.columns[error] == "boolean":
        draft.add(f"counted = {_string('NOT ' + shown_identifier(error))}", "an error flag")
        return
    if "status" in table.columns:
        values = [str(v) for v in _sample(conn, table, "status") if v is not None]
        done = [v for v in values if v.lower() in DONE_WORDS]
        if done:
            literal = "'" + done[0].replace("'", "''") + "'"
            draft.add(
                f"counted = {_string('status = ' + literal)}",
                f"status values seen: {', '.join(values[:6])}",
            )
            return
    draft.add('counted = "true"', "no success or status column: every row counts")


def _ledger(conn: Connection, draft: Draft, table: TableInfo, balance: TableInfo, key: str) -> bool:
    owner = _ledger_key(table, balance, key)
    amounts = [c for c in table.numeric() if AMOUNT_NAME.search(c) and c != owner]
    times = table.times()
    if owner is None or not amounts or not times:
        return False
    amount = amounts[0]
    at = next((c for c in times if TIME_NAME.match(c)), times[0])
    draft.add()
    draft.add("[[ledger]]")
    draft.add(f"name = {_string(table.name)}")
    draft.add(f"table = {_string(table.qualified)}")
    how = "a foreign key to the balance key" if owner in table.foreign_keys else "by its name"
    draft.add(f"key = {_string(shown_identifier(owner))}", f"the owner: {how}")
    draft.add(f"at = {_string(shown_identifier(at))}", "the row's time")
    signed = _has_negative(conn, table, amount)
    shown = shown_identifier(amount)
    draft.add(
        f"amount = {_string(f'abs({shown})' if signed else shown)}",
        "a signed amount: its size (kind tells the direction)" if signed else "the amount",
    )
    _kind(conn, draft, table, amount)
    _counted(conn, draft, table)
    deleted = next((c for c in times if SOFT_DELETE.match(c)), None)
    if deleted:
        draft.add(
            f"where = {_string(f'{shown_identifier(deleted)} IS NULL')}",
            "soft-deleted rows do not count",
        )
    action = next(
        (c for c in ("action_type", "action", "reason", "type") if c in table.columns), None
    )
    if action:
        draft.add(
            f"action = {_string(shown_identifier(action))}",
            "shown by diagnose, matched by overrides",
        )
    model = next((c for c in ("model_used", "model") if c in table.columns), None)
    if model:
        draft.add(f"model = {_string(shown_identifier(model))}")
    if table.unique_keys:
        draft.add(f"id = {_string(shown_identifier(table.unique_keys[0]))}")
    return True


def _lots_table(table: TableInfo, balance: TableInfo, key: str) -> str | None:
    """The owner column of a table of lots (an owner, an amount, an expiry), or None."""
    if table is balance or not any(EXPIRES.match(c) for c in table.times()):
        return None
    owner = _ledger_key(table, balance, key)
    amounts = [c for c in table.numeric() if AMOUNT_NAME.search(c) and c != owner]
    return owner if owner is not None and amounts else None


def _lots(draft: Draft, table: TableInfo, owner: str) -> None:
    amount = next(c for c in table.numeric() if AMOUNT_NAME.search(c) and c != owner)
    times = table.times()
    at = next((c for c in LOT_AT if c in times), times[0])
    expires = next(c for c in times if EXPIRES.match(c))
    draft.add()
    draft.add("[[lots]]", "an amount and an expiry: grants that expire and burn down")
    draft.add(f"name = {_string(table.name)}")
    draft.add(f"table = {_string(table.qualified)}")
    how = "a foreign key to the balance key" if owner in table.foreign_keys else "by its name"
    draft.add(f"key = {_string(shown_identifier(owner))}", f"the owner: {how}")
    deleted = next((c for c in times if SOFT_DELETE.match(c)), None)
    if deleted:
        draft.add(
            f"where = {_string(f'{shown_identifier(deleted)} IS NULL')}",
            "soft-deleted grants are no lots",
        )
    draft.add(f"amount = {_string(shown_identifier(amount))}", "the lot's amount")
    draft.add(f"at = {_string(shown_identifier(at))}", "spendable from")
    draft.add(f"expires_at = {_string(shown_identifier(expires))}", "its expiry (NULL: never)")
    voided = next((c for c in VOIDED if c in times), None)
    if voided:
        draft.add(f"voided_at = {_string(shown_identifier(voided))}", "voided from")
    if "priority" in table.numeric():
        draft.add('priority = "priority"', "lower burns first")
    if table.unique_keys:
        draft.add(f"id = {_string(shown_identifier(table.unique_keys[0]))}")
    else:
        draft.add('id = "ctid::text"', "no unique key: name the grant's id column")


def _snapshots(conn: Connection, tables: list[TableInfo]) -> tuple[TableInfo, str] | None:
    """A table of balance snapshots (several rows per owner, a time, a balance column, a
    unique row id) and its owner column, when no table has one row per owner."""
    for table in tables:
        balances = [c for c in table.numeric() if re.search(r"balance|remaining", c)]
        if not (balances and table.times() and table.unique_keys):
            continue
        owners = [
            c
            for c in table.columns
            if c not in table.unique_keys and (c in table.foreign_keys or re.search(r"_id$", c))
        ]
        if owners and _many_per_owner(conn, table):
            return table, owners[0]
    return None


def draft(conn: Connection, settings: Settings) -> str | None:
    """A commented TOML draft, or None when no table looks like a balance table."""
    with transaction(conn, settings, read_only=True):
        tables = _tables(conn, settings)
        scored = sorted(
            (
                (s, t)
                for t in tables
                if (s := _balance_score(t)) > 0 and not _many_per_owner(conn, t)
            ),
            key=lambda p: -p[0],
        )
        snapshot: str | None = None
        if not scored:
            found = _snapshots(conn, tables)
            if found is None:
                return None
            balance, snapshot = found
            scored = [(1, balance)]
        balance = scored[0][1]
        out = Draft([
            "# A draft mapping (docs/mapping.md), guessed from the catalogs by 'tokenfix init'.",
            "# Check every line marked 'guess', then: tokenfix doctor --mapping THIS_FILE",
            "",
        ])  # fmt: skip
        for _, other in scored[1:4]:
            out.add(f"# runner-up balance table: {other.qualified}")
        key = snapshot or balance.unique_keys[0]
        lots = [(t, o) for t in tables if (o := _lots_table(t, balance, key)) is not None]
        _balance(out, balance, periods=not lots, owner=snapshot)
        # Each table that looks like a ledger gets its [[ledger]] section, in catalog order.
        ledgers = [
            t
            for t in tables
            if t is not balance
            and all(t is not lot for lot, _ in lots)
            and _ledger(conn, out, t, balance, key)
        ]
        for table, owner in lots:
            _lots(out, table, owner)
        if not ledgers:
            out.add()
            out.add("# could not find a ledger (a table with the owner's key, an amount and a")
            out.add("# time): write its [[ledger]] section by hand")
        overrides = next(
            (t for t in tables if "token_cost" in t.columns and "action_type" in t.columns), None
        )
        if overrides is not None:
            out.add()
            out.add("[pricing]")
            out.add(f"overrides = {_string(overrides.qualified)}", "action_type and token_cost")
    return "\n".join(out.lines) + "\n"
