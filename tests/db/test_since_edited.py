"""`[balance] changed_at` joins `--since`: a hand-edited cache of a quiet owner is seen by the
nightly run, and `--defer-edited` leaves such an edit alone for a human to look at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

LONG_AGO = datetime.now(UTC) - timedelta(days=3)

# A trigger keeping updated_at, as Supabase's moddatetime does: any edit of the row moves it.
MODDATETIME = """
CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER user_profiles_touch BEFORE UPDATE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
"""


@pytest.fixture
def with_changed_at(cli: CliRunner, tmp_path: Path) -> Path:
    """The default mapping, printed, with `changed_at = "updated_at"` (the README's recipe)."""
    printed = cli("mapping").stdout
    path = tmp_path / "tokenfix.toml"
    path.write_text(printed.replace("[balance]\n", '[balance]\nchanged_at = "updated_at"\n', 1))
    return path


@pytest.fixture
def quiet_owner(ledger: Ledger, conn: psycopg.Connection) -> uuid.UUID:
    """In step with its ledger, no activity for three days; then a support agent adds 500
    by hand."""
    conn.execute(MODDATETIME)
    user = ledger.profile(ledger.user(), remaining=-100, used=100, created_at=LONG_AGO)
    ledger.row(user, 100, at=LONG_AGO)
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 400 WHERE user_id = %s",
        (user,),
    )
    return user


def listed(cli: CliRunner, *args: str) -> list[str]:
    result = cli("reconcile", "--all", "--since", "25h", "--dry-run", "--json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return [change["user_id"] for change in result.json()["changes"]]


def test_since_without_changed_at_misses_a_hand_edited_quiet_owner(
    cli: CliRunner, quiet_owner: uuid.UUID
) -> None:
    assert listed(cli) == []


def test_since_with_changed_at_catches_a_hand_edited_quiet_owner(
    cli: CliRunner, quiet_owner: uuid.UUID, with_changed_at: Path
) -> None:
    assert listed(cli, "--mapping", str(with_changed_at)) == [str(quiet_owner)]


def test_since_with_changed_at_leaves_out_owners_quiet_on_both_sides(
    cli: CliRunner, ledger: Ledger, with_changed_at: Path
) -> None:
    user = ledger.profile(ledger.user(), remaining=7, used=0, created_at=LONG_AGO)
    ledger.row(user, 1, at=LONG_AGO)  # drift, but nothing changed in the window
    assert listed(cli, "--mapping", str(with_changed_at)) == []
    assert listed(cli, "--mapping", str(with_changed_at), "--since", "4d") == [str(user)]


def test_changed_at_round_trips_through_the_mapping_command(
    cli: CliRunner, with_changed_at: Path
) -> None:
    printed = cli("mapping", "--mapping", str(with_changed_at))
    assert 'changed_at = "updated_at"' in printed.stdout


def test_defer_edited_needs_changed_at(cli: CliRunner, quiet_owner: uuid.UUID) -> None:
    result = cli("reconcile", "--all", "--yes", "--defer-edited")
    assert result.exit_code == 2
    assert "--defer-edited needs [balance] changed_at" in result.stderr
    assert "Traceback" not in result.stderr


def test_defer_edited_leaves_a_hand_edit_alone_and_needs_attention(
    cli: CliRunner, conn: psycopg.Connection, quiet_owner: uuid.UUID, with_changed_at: Path
) -> None:
    result = cli(
        "reconcile",
        "--all",
        "--since",
        "25h",
        "--yes",
        "--defer-edited",
        "--json",
        "--mapping",
        str(with_changed_at),
    )
    assert result.exit_code == 1, result.stderr
    data = result.json()
    [change] = data["changes"]
    assert change["user_id"] == str(quiet_owner) and change["status"] == "drift"
    assert change["skipped"] == "edited_after_ledger" and change["applied"] is False
    assert data["summary"]["edited_users"] == 1 and data["summary"]["unexplained_users"] == 1
    assert data["run_id"] is None and data["users_updated"] == 0
    kept = conn.execute(
        "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s",
        (quiet_owner,),
    ).fetchone()
    assert kept == (400,)
    unexplained = cli(
        "reconcile",
        "--all",
        "--yes",
        "--defer-edited",
        "--fail-on",
        "unexplained",
        "--mapping",
        str(with_changed_at),
    )
    assert unexplained.exit_code == 1
    assert "alone (cache edited after the ledger)" in unexplained.stdout
    dry = cli(
        "reconcile",
        "--all",
        "--dry-run",
        "--defer-edited",
        "--json",
        "--mapping",
        str(with_changed_at),
    )
    assert dry.json()["changes"][0]["skipped"] == "edited_after_ledger"


def test_without_defer_edited_the_hand_edit_is_taken_back(
    cli: CliRunner, conn: psycopg.Connection, quiet_owner: uuid.UUID, with_changed_at: Path
) -> None:
    result = cli("reconcile", "--all", "--yes", "--json", "--mapping", str(with_changed_at))
    assert result.exit_code == 0
    assert result.json()["changes"][0]["applied"] is True


def test_defer_edited_still_fixes_a_cache_that_stopped_following(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, with_changed_at: Path
) -> None:
    """The seed's own bug: charges after the cache's last update never applied (the cache is
    above expected, but its row is older than the newest charge)."""
    conn.execute(MODDATETIME)
    user = ledger.profile(ledger.user(), remaining=1000, used=0, created_at=LONG_AGO)
    ledger.row(user, 1000, action="admin_grant", model=None, at=LONG_AGO)
    ledger.row(user, 300, at=LONG_AGO + timedelta(hours=1))  # never applied to the cache
    result = cli(
        "reconcile", "--all", "--yes", "--defer-edited", "--json", "--mapping", str(with_changed_at)
    )
    assert result.exit_code == 0, result.stderr
    [change] = result.json()["changes"]
    assert change["applied"] is True and change["skipped"] is None


def test_defer_edited_fixes_a_cache_below_expected(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, with_changed_at: Path
) -> None:
    conn.execute(MODDATETIME)
    user = ledger.profile(ledger.user(), remaining=0, used=0, created_at=LONG_AGO)
    ledger.row(user, 500, action="admin_grant", model=None, at=LONG_AGO)
    conn.execute(  # edited by hand, but downwards: the user lost tokens, give them back
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 100 WHERE user_id = %s",
        (user,),
    )
    result = cli(
        "reconcile", "--all", "--yes", "--defer-edited", "--json", "--mapping", str(with_changed_at)
    )
    assert result.exit_code == 0
    assert result.json()["changes"][0]["applied"] is True


def test_a_nightly_defer_edited_run_after_a_grant_changes_nothing(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, with_changed_at: Path
) -> None:
    conn.execute(MODDATETIME)
    user = ledger.profile(ledger.user(), remaining=-100, used=100, created_at=LONG_AGO)
    ledger.row(user, 100, at=LONG_AGO)
    granted = cli(
        "grant", str(user), "500", "--reason", "r", "--yes", "--mapping", str(with_changed_at)
    )
    assert granted.exit_code == 0, granted.stderr
    nightly = cli(
        "reconcile",
        "--all",
        "--since",
        "25h",
        "--settle",
        "0",
        "--yes",
        "--defer-edited",
        "--json",
        "--mapping",
        str(with_changed_at),
    )
    assert nightly.exit_code == 0, nightly.stderr
    assert nightly.json()["changes"] == [] and nightly.json()["users_checked"] == 1


def test_a_changed_at_the_database_rejects_is_named(cli: CliRunner, with_changed_at: Path) -> None:
    with_changed_at.write_text(
        with_changed_at.read_text().replace('changed_at = "updated_at"', 'changed_at = "edited"')
    )
    result = cli("reconcile", "--all", "--dry-run", "--mapping", str(with_changed_at))
    assert result.exit_code == 3
    assert "[balance] changed_at = 'edited' is rejected" in result.stderr
