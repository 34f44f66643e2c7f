"""The mapping file (docs/mapping.md): TOML, parsed with tomllib and validated with pydantic models,
so a bad key or value is reported with the file, the line and the key; and written back as
TOML (`tokenfix mapping`). Which file is in effect is `tokenfix.mapping.choice`'s question.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from psycopg import sql
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tokenfix.base.errors import BadInput
from tokenfix.base.identifiers import QualifiedName
from tokenfix.config.settings import Settings
from tokenfix.db.expressions import problem
from tokenfix.mapping import names
from tokenfix.mapping.types import (
    Adjust,
    BalanceSide,
    Expr,
    LedgerSource,
    LotSource,
    Mapping,
)


def _table(value: Any) -> QualifiedName:
    return QualifiedName.parse(str(value))


def _column(value: Any) -> str:
    return str(QualifiedName.parse(str(value), max_parts=1))


def _expression(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty SQL expression (a TOML string)")
    reason = problem(value)
    if reason is not None:
        raise ValueError(f"is not one SQL expression: {reason}")
    return value.strip()


Table = Annotated[QualifiedName, BeforeValidator(_table)]
Column = Annotated[str, BeforeValidator(_column)]
Expression = Annotated[str, BeforeValidator(_expression)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class BalanceFile(_Strict):
    table: Table
    key: Column
    where: Expression | None = None
    remaining: Expression | None = None
    used: Expression | None = None
    starting: Expression | None = None
    created_at: Expression | None = None
    tolerance: Expression | None = None
    subject: Expression | None = None
    changed_at: Expression | None = None
    period_start: Expression | None = None
    period_end: Expression | None = None
    period_length: Expression | None = None
    latest: Expression | None = None
    row_id: Column | None = None
    write: dict[Column, Expression] = Field(default_factory=dict)
    create: dict[Column, Expression] | None = None


class LedgerFile(_Strict):
    name: str | None = None
    table: Table
    key: Expression
    where: Expression | None = None
    at: Expression
    amount: Expression
    kind: Expression
    counted: Expression = "true"
    action: Expression | None = None
    model: Expression | None = None
    id: Expression | None = None
    each: Expression | None = None


class LotsFile(_Strict):
    name: str | None = None
    table: Table
    key: Expression
    where: Expression | None = None
    amount: Expression
    at: Expression
    expires_at: Expression | None = None
    voided_at: Expression | None = None
    priority: Expression | None = None
    id: Expression


class PricingFile(_Strict):
    overrides: Table


class AdjustFile(_Strict):
    ledger: str
    grant: dict[Column, Expression] = Field(min_length=1)
    deduct: dict[Column, Expression] = Field(min_length=1)


class MappingFile(_Strict):
    balance: BalanceFile
    ledger: list[LedgerFile] = Field(min_length=1)
    lots: list[LotsFile] = Field(default_factory=list)
    pricing: PricingFile | None = None
    adjust: AdjustFile | None = None


def _over(
    table: QualifiedName, alias: str, *, balance_row: bool = False
) -> Callable[[str | None], Expr | None]:
    """Expressions over `table`'s rows, which they may name as `alias` or by the table's own
    name (`balance_row`: and the owner's balance row as `balance`): one text for every
    statement (tokenfix.mapping.names)."""

    def expr(text: str | None) -> Expr | None:
        if text is None:
            return None
        compiled = names.own_names(text, table, alias)
        if balance_row:
            compiled = names.balance_row_names(compiled)
        return Expr(sql.SQL(compiled), text)

    return expr


def _required(expr: Expr | None) -> Expr:
    assert expr is not None
    return expr


def to_mapping(document: MappingFile, origin: str) -> Mapping:
    b = document.balance
    if b.remaining is None and b.used is None:
        raise ValueError("[balance] needs remaining, used, or both")
    _raw = _over(b.table, names.BALANCE)
    balance = BalanceSide(
        table=b.table,
        key=b.key,
        remaining=_raw(b.remaining),
        used=_raw(b.used),
        write=tuple((c, _required(_raw(e))) for c, e in b.write.items()),
        create=tuple((c, _required(_raw(e))) for c, e in b.create.items())
        if b.create is not None
        else None,
        where=_raw(b.where),
        starting=_raw(b.starting),
        created_at=_raw(b.created_at),
        tolerance=_raw(b.tolerance),
        subject=_raw(b.subject),
        changed_at=_raw(b.changed_at),
        period_start=_raw(b.period_start),
        period_end=_raw(b.period_end),
        period_length=_raw(b.period_length),
        latest=_raw(b.latest),
        row_id=b.row_id,
    )
    if (b.latest is None) != (b.row_id is None):
        raise ValueError("[balance] latest and row_id go together (snapshots): map both")
    if b.latest is not None and b.create is not None:
        raise ValueError("[balance.create] with latest (snapshots) is not supported yet")
    if b.period_length is not None and b.period_start is None:
        raise ValueError("[balance] period_length needs period_start")
    ledgers = tuple(_ledger(source) for source in document.ledger)
    labels = [s.name for s in ledgers]
    if len(set(labels)) != len(labels):
        raise ValueError("every [[ledger]] needs its own name (two have the same)")
    lots = tuple(_lots(source) for source in document.lots)
    labels += [lot.name for lot in lots]
    if len(set(labels)) != len(labels):
        raise ValueError("every [[ledger]] and [[lots]] needs its own name (two have the same)")
    if lots and balance.has_periods:
        raise ValueError(
            "periods (period_start / period_end) and [[lots]] in one mapping are not defined yet:"
            " map one or the other"
        )
    pricing = document.pricing.overrides if document.pricing else None
    adjust = None
    if document.adjust is not None:
        a = document.adjust
        ledger_names = [s.name for s in ledgers]
        if a.ledger not in ledger_names:
            raise ValueError(f"[adjust] ledger = {a.ledger!r} names no [[ledger]] (have: "
                             f"{', '.join(ledger_names)})")  # fmt: skip
        adjust = Adjust(
            a.ledger,
            tuple((c, Expr.raw(e)) for c, e in a.grant.items()),
            tuple((c, Expr.raw(e)) for c, e in a.deduct.items()),
        )
    return Mapping(
        balance, ledgers, pricing, origin=origin, from_settings=False, adjust=adjust, lots=lots
    )


def _lots(source: LotsFile) -> LotSource:
    # A lot-side expression sees its row as `ledger`, and its owner's balance row as `balance`
    # (not in `key`, which finds that row).
    raw = _over(source.table, names.LEDGER, balance_row=True)
    own = _over(source.table, names.LEDGER)
    return LotSource(
        name=source.name or source.table.table_name,
        table=source.table,
        key=_required(own(source.key)),
        amount=_required(raw(source.amount)),
        at=_required(raw(source.at)),
        id=_required(raw(source.id)),
        where=raw(source.where),
        expires_at=raw(source.expires_at),
        voided_at=raw(source.voided_at),
        priority=raw(source.priority),
    )


def _ledger(source: LedgerFile) -> LedgerSource:
    # `key` finds the owner's balance row and `each` makes the rows it is joined to: neither
    # sees it.
    raw = _over(source.table, names.LEDGER, balance_row=True)
    own = _over(source.table, names.LEDGER)
    return LedgerSource(
        name=source.name or source.table.table_name,
        table=source.table,
        key=_required(own(source.key)),
        at=_required(raw(source.at)),
        amount=_required(raw(source.amount)),
        kind=_required(raw(source.kind)),
        counted=_required(raw(source.counted)),
        where=raw(source.where),
        action=raw(source.action),
        model=raw(source.model),
        id=raw(source.id),
        each=own(source.each),
    )


def load_file(path: Path) -> Mapping:
    """The mapping in `path`; a bad file is bad input naming the file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read the mapping file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"the mapping file {path} is not valid TOML: {exc}") from None
    try:
        return to_mapping(MappingFile.model_validate(data), origin=f"the mapping file {path}")
    except ValidationError as exc:
        # A misspelt key explains the "missing" one beside it: tell the misspelling first.
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        error = errors[0]
        loc = tuple(error.get("loc", ()))
        where = _locate(text, loc)
        key = ".".join(str(part) for part in loc) or "(the file)"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown key"
        elif error.get("type") == "missing":
            message = "missing (required)"
        raise BadInput(f"the mapping file {path}{where}: {key}: {message}") from None
    except ValueError as exc:
        raise BadInput(f"the mapping file {path}: {exc}") from None


_HEADER = re.compile(r"^\s*\[(\[)?\s*([A-Za-z0-9_.\s]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")


def _locate(text: str, loc: tuple[Any, ...]) -> str:
    """`, line N` of the key at `loc` (('ledger', 1, 'amout') is in the second [[ledger]])."""
    path = [str(p) for p in loc if not isinstance(p, int)]
    index = next((p for p in loc if isinstance(p, int)), 0)
    if not path:
        return ""
    table, key = ".".join(path[:-1]), path[-1]
    current, seen = "", dict[str, int]()
    found_table_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(2).replace(" ", "")
            seen[current] = seen.get(current, -1) + 1
            if current == (table or key) and seen[current] == index and found_table_line is None:
                found_table_line = number
            continue
        item = _KEY.match(line)
        in_table = current == table and seen.get(current, 0) == index
        if item and in_table and item.group(1).strip('"') == key:
            return f", line {number}"
    return f", line {found_table_line}" if found_table_line else ""


# -- writing a mapping as TOML (`tokenfix mapping`) ----------------------------------------


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _string(name)


def _line(key: str, expr: Expr | None) -> list[str]:
    return [f"{key} = {_string(expr.text)}"] if expr is not None else []


def to_toml(mapping: Mapping, settings: Settings) -> str:
    """The mapping as a TOML document, with comments saying where it came from."""
    b = mapping.balance
    starting = settings.starting_balance
    lines = [
        f"# The mapping in effect: {mapping.origin}.",
        "# Expressions are SQL over the table's own columns (docs/mapping.md).",
        "",
        "[balance]",
        f"table = {_string(str(b.table))}",
        f"key = {_string(b.key)}",
        *_line("where", b.where),
        *_line("remaining", b.remaining),
        *_line("used", b.used),
        *(
            _line("starting", b.starting)
            if b.starting is not None
            else [f"# starting: TOKENFIX_STARTING_BALANCE (now {starting}) for every owner"]
        ),
        *_line("created_at", b.created_at),
        *_line("tolerance", b.tolerance),
        *_line("subject", b.subject),
        *_line("changed_at", b.changed_at),
        *_line("period_start", b.period_start),
        *_line("period_end", b.period_end),
        *_line("period_length", b.period_length),
        *_line("latest", b.latest),
        *([f"row_id = {_string(b.row_id)}"] if b.row_id is not None else []),
        "",
        "[balance.write]",
        *(f"{_key(c)} = {_string(e.text)}" for c, e in b.write),
    ]
    if b.create is not None:
        lines += ["", "[balance.create]"]
        lines += [f"{_key(c)} = {_string(e.text)}" for c, e in b.create]
    for source in mapping.ledgers:
        lines += [
            "",
            "[[ledger]]",
            f"name = {_string(source.name)}",
            f"table = {_string(str(source.table))}",
            *_line("key", source.key),
            *_line("where", source.where),
            *_line("at", source.at),
            *_line("amount", source.amount),
            *_line("kind", source.kind),
            *_line("counted", source.counted),
            *_line("action", source.action),
            *_line("model", source.model),
            *_line("id", source.id),
            *_line("each", source.each),
        ]
    for lot in mapping.lots:
        lines += [
            "",
            "[[lots]]",
            f"name = {_string(lot.name)}",
            f"table = {_string(str(lot.table))}",
            *_line("where", lot.where),
            *(line for name, e in lot.fields() for line in _line(name, e)),
        ]
    if mapping.pricing is not None:
        lines += ["", "[pricing]", f"overrides = {_string(str(mapping.pricing))}"]
    if mapping.adjust is not None:
        a = mapping.adjust
        lines += ["", "[adjust]", f"ledger = {_string(a.ledger)}"]
        for kind, columns in (("grant", a.grant), ("deduct", a.deduct)):
            lines += ["", f"[adjust.{kind}]"]
            lines += [f"{_key(c)} = {_string(e.text)}" for c, e in columns]
    return "\n".join(lines) + "\n"
