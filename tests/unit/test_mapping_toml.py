"""The mapping file's validation (docs/mapping.md, errors): TOML parsed into strict models, a bad
file is bad input naming the file, the line and the key. No database needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenfix.base.errors import BadInput
from tokenfix.mapping.file import load_file

LEDGER = '[[ledger]]\ntable = "t"\nkey = "k"\nat = "a"\namount = "x"\nkind = "y"\n'
BAD_FILES = [
    ("[balance\ntable = 'x'\n", "is not valid TOML"),
    (
        '[balance]\ntable = "p"\nkey = "id"\nremaining = "c"\nremaning = "c"\n'
        '[[ledger]]\ntable = "t"\nkey = "k"\nat = "a"\namount = "x"\nkind = "y"\n',
        "line 5: balance.remaning: unknown key",
    ),
    (
        '[balance]\ntable = "p"\nkey = "id"\nremaining = "c"\n'
        '[[ledger]]\ntable = "t"\nkey = "k"\nat = "a"\namount = "x"\nkind = "y"\n'
        '[[ledger]]\ntable = "u"\nkey = "k"\nat = "a"\namout = "x"\nkind = "y"\n',
        "line 15: ledger.1.amout: unknown key",
    ),
    ('[balance]\ntable = "p"\nkey = "id"\n', "ledger: missing (required)"),
    (
        '[balance]\ntable = "p; drop table x"\nkey = "id"\nremaining = "c"\n'
        '[[ledger]]\ntable = "t"\nkey = "k"\nat = "a"\namount = "x"\nkind = "y"\n',
        "balance.table",
    ),
    (
        '[balance]\ntable = "p"\nkey = "id"\n'
        '[[ledger]]\ntable = "t"\nkey = "k"\nat = "a"\namount = "x"\nkind = "y"\n',
        "[balance] needs remaining, used, or both",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_a_bad_mapping_file_names_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as raised:
        load_file(path)
    message = str(raised.value)
    assert str(path) in message and expected in message, message


def test_a_good_file_keeps_its_expressions_as_written(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(
        '[balance]\ntable = "public.wallets"\nkey = "id"\nremaining = "credits"\n' + LEDGER
    )
    mapping = load_file(path)
    assert str(mapping.balance.table) == "public.wallets"
    assert mapping.balance.remaining is not None and mapping.balance.remaining.text == "credits"
    assert [str(source.table) for source in mapping.ledgers] == ["t"]


def test_an_unreadable_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="cannot read the mapping file"):
        load_file(tmp_path / "absent.toml")
