"""The names a mapping expression may use (docs/mapping.md): `balance` and `ledger`, and the
tables' own names, are one compiled text for doctor, diagnose, dry runs, writes and revert;
errors about an expression name the mapping file, the `[section] key` and the expression."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.clirunner import CliRunner
from tokenfix.base.identifiers import QualifiedName
from tokenfix.mapping import names

CREDITS = (EXAMPLES / "credits" / "tokenfix.toml").read_text()
ALICE = uuid.UUID(int=1)
BOB = uuid.UUID(int=2)


@pytest.fixture
def credits_db(conn: psycopg.Connection) -> None:
    """Alice: 100 at signup, bought 30, used 20 and 5, cached 110 (a charge missed).
    Bob: 50 at signup (after the pricing change), used 10, cached right (40)."""
    conn.execute((EXAMPLES / "credits" / "schema.sql").read_text())
    rows = [
        (ALICE, "2026-01-01", 110, [(30, "purchase"), (-20, "usage"), (-5, "usage")]),
        (BOB, "2026-07-01", 40, [(-10, "usage")]),
    ]
    for user, created, cached, moves in rows:
        conn.execute(
            "INSERT INTO profiles (id, email, credits, created_at) VALUES (%s, %s, %s, %s)",
            (user, f"{user}@example.com", cached, created),
        )
        for day, (amount, kind) in enumerate(moves, start=1):
            conn.execute(
                "INSERT INTO credit_transactions (user_id, amount, type, created_at)"
                " VALUES (%s, %s, %s, %s::timestamptz + %s * interval '1 day')",
                (user, amount, kind, created, day),
            )


def _mapping(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    return str(path)


QUALIFIED = {
    "by the tables' own names": (
        ('starting = "CASE WHEN created_at', 'starting = "CASE WHEN profiles.created_at'),
        ('key = "user_id"', 'key = "credit_transactions.user_id"\nwhere = '
         '"credit_transactions.amount <> 0"'),
    ),
    "by balance and ledger": (
        ('starting = "CASE WHEN created_at', 'starting = "CASE WHEN balance.created_at'),
        ('amount = "abs(amount)"', 'amount = "abs(ledger.amount)"\nwhere = "ledger.amount <> 0"'),
    ),
    "schema-qualified": (
        ('table = "profiles"', 'table = "public.profiles"'),
        ('starting = "CASE WHEN created_at', 'starting = "CASE WHEN public.profiles.created_at'),
        ('remaining = "credits"', 'remaining = "balance.credits"'),
    ),
}  # fmt: skip


@pytest.mark.parametrize("names", sorted(QUALIFIED))
def test_qualified_names_mean_the_same_row_in_every_command(
    cli: CliRunner, credits_db: None, tmp_path: Path, conn: psycopg.Connection, names: str
) -> None:
    text = CREDITS
    for old, new in QUALIFIED[names]:
        assert old in text
        text = text.replace(old, new, 1)
    mapping = _mapping(tmp_path, text)
    doctor = cli("doctor", "--json", "--mapping", mapping)
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    bad = {n: c for n, c in checks.items() if n.startswith("mapping_") and c["status"] != "ok"}
    assert bad == {}
    dry = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert dry.exit_code == 1, dry.stderr
    changes = json.loads(dry.stdout, parse_float=Decimal)["changes"]
    assert [(c["user_id"], c["expected"]["tokens_remaining"]) for c in changes] == [
        (str(ALICE), 105)
    ]
    diagnose = cli("diagnose", str(ALICE), "--json", "--ledger", "5", "--mapping", mapping)
    assert diagnose.exit_code == 1, diagnose.stderr
    assert diagnose.json()["drift"]["tokens_remaining"] == 5
    write = cli("reconcile", "--all", "--yes", "--json", "--mapping", mapping)
    assert write.exit_code == 0, write.stderr
    assert conn.execute("SELECT credits FROM profiles WHERE id = %s", (ALICE,)).fetchone() == (105,)
    undo = cli("revert", write.json()["run_id"], "--yes", "--mapping", mapping)
    assert undo.exit_code == 0, undo.stderr
    assert conn.execute("SELECT credits FROM profiles WHERE id = %s", (ALICE,)).fetchone() == (110,)


REJECTED = {
    "[balance] starting": ('starting = "CASE', 'starting = "credits_x + CASE', "credits_x"),
    "[[ledger]] 'credit_transactions' amount": (
        'amount = "abs(amount)"', 'amount = "abs(ledger.amout)"', "ledger.amout"),
    "[[ledger]] 'credit_transactions' where": (
        'key = "user_id"', 'key = "user_id"\nwhere = "l.amount <> 0"', "l.amount"),
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(REJECTED))
def test_a_rejected_expression_is_named_with_the_file_its_key_and_its_text(
    cli: CliRunner, credits_db: None, tmp_path: Path, key: str
) -> None:
    old, new, word = REJECTED[key]
    mapping = _mapping(tmp_path, CREDITS.replace(old, new, 1))
    for command in (
        ("reconcile", "--all", "--dry-run"),
        ("diagnose", str(ALICE)),
        ("reconcile", "--all", "--yes"),
    ):
        result = cli(*command, "--mapping", mapping)
        assert result.exit_code == 3, result.stderr
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1, line
        assert mapping in line and key in line and word in line, line
        assert "TOKENFIX_" not in line, line
    doctor = cli("doctor", "--json", "--mapping", mapping)
    failing = [c for c in doctor.json()["checks"] if c["status"] == "fail"]
    assert failing and all("see --debug" not in c["fix"] for c in failing), failing
    assert any(key in c["message"] and word in c["message"] for c in failing), failing


def test_diagnose_shows_the_causes_when_the_mapping_reads_no_used_side(
    cli: CliRunner, credits_db: None, tmp_path: Path
) -> None:
    mapping = _mapping(tmp_path, CREDITS)
    result = cli("diagnose", str(ALICE), "--mapping", mapping)
    assert result.exit_code == 1, result.stderr
    assert "NULL" not in result.stdout
    assert "cannot spend" not in result.stdout
    assert "Likely cause" in result.stdout or "No single known cause" in result.stdout


def test_doctor_advises_no_index_postgresql_rejects(
    cli: CliRunner, credits_db: None, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("CREATE VIEW usage_view AS SELECT * FROM credit_transactions WHERE type = 'usage'")
    text = (
        CREDITS.replace('table = "credit_transactions"', 'table = "usage_view"', 1)
        .replace('name = "credit_transactions"', 'name = "usage"', 1)
        .replace('ledger = "credit_transactions"', 'ledger = "usage"')
    )
    text += (
        '\n[[ledger]]\nname = "purchases"\ntable = "credit_transactions"\n'
        'key = "(SELECT p.id FROM profiles AS p WHERE p.id = user_id)"\n'
        'where = "type <> \'usage\'"\nat = "created_at"\namount = "amount"\nkind = "\'grant\'"\n'
    )
    mapping = _mapping(tmp_path, text)
    doctor = cli("doctor", "--json", "--mapping", mapping)
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    for name in ("index_usage_key", "index_usage_at", "index_purchases_key"):
        check = checks[name]
        assert check["status"] == "warn", check
        fix = check["fix"] or ""
        assert "CREATE INDEX" not in fix or "SELECT" not in fix, fix
        if "CREATE INDEX" in fix:  # whatever is advised must run
            conn.execute(fix.replace(" CONCURRENTLY", "").rstrip(";"))
    health = next(c for c in doctor.json()["checks"] if "invalid rows" in c["message"])
    assert "usage" in health["message"] and "purchases" in health["message"], health
    assert "credit_transactions, credit_transactions" not in health["message"]


def test_doctor_blames_no_role_for_an_expression_that_fails_on_the_rows(
    cli: CliRunner, credits_db: None, tmp_path: Path
) -> None:
    # Compiles (no row read) but divides by zero on every row: the superuser's doctor must
    # not be told to find a role that can read the catalogs, nor to see a --debug that adds
    # nothing.
    text = CREDITS.replace('amount = "abs(amount)"', 'amount = "abs(amount) / (amount - amount)"')
    mapping = _mapping(tmp_path, text)
    doctor = cli("doctor", "--json", "--mapping", mapping)
    failing = [c for c in doctor.json()["checks"] if c["status"] == "fail"]
    assert failing, doctor.json()["checks"]
    for check in failing:
        assert "division by zero" in check["message"], check
        assert "role" not in check["fix"] and "--debug" not in check["fix"], check


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("profiles.credits", "balance.credits"),
        ("public.profiles.credits + PROFILES.x", "balance.credits + balance.x"),
        ('"profiles".credits', "balance.credits"),
        ("profiles_archive.credits + my_profiles.x", "profiles_archive.credits + my_profiles.x"),
        ("'profiles.credits' || profiles . credits", "'profiles.credits' || balance. credits"),
        ("credits", "credits"),
    ],
)
def test_own_names_name_the_alias_outside_string_literals(text: str, rewritten: str) -> None:
    assert names.own_names(text, QualifiedName.parse("profiles"), "balance") == rewritten


@pytest.mark.parametrize("example", ["lots", "periods", "credits"])
def test_the_mapping_in_effect_prints_every_new_key_back(example: str, tmp_path: Path) -> None:
    from tests.db.test_mapping_each import MAPPING as EACH
    from tests.db.test_mapping_snapshots import MAPPING as SNAPSHOTS
    from tokenfix.config.settings import Settings
    from tokenfix.mapping.file import load_file, to_toml

    for name, text in (("each", EACH), ("snapshots", SNAPSHOTS), (example, None)):
        path = tmp_path / f"{name}.toml"
        path.write_text(text or (EXAMPLES / example / "tokenfix.toml").read_text())
        mapping = load_file(path)
        printed = tmp_path / f"{name}.printed.toml"
        printed.write_text(to_toml(mapping, Settings()))
        assert load_file(printed).signature() == mapping.signature()
