"""`balance.column` in a ledger- or lot-side expression (docs/mapping.md, "Expressions"): how it
is read, and that only the statements of a source that names it join the balance row, so a
mapping that does not keeps exactly the statements (and plans) it had."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tokenfix.config.settings import load_settings
from tokenfix.ledger.model import BalanceModel, Selection
from tokenfix.ledger.shape import Shape, SourceShape
from tokenfix.mapping import names
from tokenfix.mapping.file import load_file

ROOT = Path(__file__).resolve().parents[2]
ROW = "(tf_balance.tf_row)."


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("ledger.at <= balance.at", f"ledger.at <= {ROW}at"),
        ('BALANCE.x + "balance"."Y"', f'{ROW}x + {ROW}"Y"'),
        ("balance . x", f"{ROW} x"),
        (
            "'balance.x' || balance_x.y || my.balance.z",
            "'balance.x' || balance_x.y || my.balance.z",
        ),
        ("balance", "balance"),
        ("coalesce(balances.x, 0)", "coalesce(balances.x, 0)"),
    ],
)
def test_balance_names_the_owners_row_outside_string_literals(text: str, read: str) -> None:
    assert names.balance_row_names(text) == read


SECOND = """
[[ledger]]
name = "bonus"
table = "bonuses"
key = "user_id"
where = "created_at >= balance.created_at"
at = "created_at"
amount = "amount"
kind = "'grant'"
"""


def _model(text: str, tmp_path: Path, sources: int) -> BalanceModel:
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    shape = Shape(
        key="uuid",
        balance_columns={"id": "uuid", "credits": "integer", "created_at": "timestamptz"},
        balance_types={},
        sources=tuple(SourceShape(key="uuid") for _ in range(sources)),
        pricing_columns={},
        key_unique=True,
    )
    return BalanceModel(load_settings(database_url="postgresql://u@h/db"), load_file(path), shape)


def _statements(model: BalanceModel) -> Iterator[str]:
    """Every statement a dry run, a write's recheck, diagnose and the causes compose."""
    for selection in (Selection(), Selection(keys=("a",)), Selection(since=timedelta(days=1))):
        yield model.balances(selection)[0].as_string(None)
    yield model.with_recent("recompute", Selection(keys=("a",)), timedelta(0))[0].as_string(None)
    yield model.classified()[0].as_string(None)
    yield model.fleet_evidence()[0].as_string(None)
    yield model.unknown_keys().as_string(None)
    yield model.future_rows()[0].as_string(None)
    yield model.ledger_health()[0].as_string(None)


def test_a_mapping_that_names_no_balance_row_joins_none(tmp_path: Path) -> None:
    model = _model((ROOT / "examples" / "credits" / "tokenfix.toml").read_text(), tmp_path, 1)
    assert not any(s.names_balance_row for s in model.mapping.ledgers)
    for statement in _statements(model):
        assert names.BALANCE_ROW not in statement


def test_only_the_source_that_names_the_balance_row_joins_it(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "credits" / "tokenfix.toml").read_text() + SECOND
    model = _model(text, tmp_path, 2)
    assert [s.names_balance_row for s in model.mapping.ledgers] == [False, True]
    for statement in _statements(model):
        joins = statement.count('LEFT JOIN (SELECT ROW(balance.*)::"profiles" AS tf_row')
        # one join per place the bonus source is read; the credit_transactions source, none
        assert joins == statement.count('"bonuses" AS "ledger"'), statement
        assert joins >= 1
