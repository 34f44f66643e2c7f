"""docs/mapping.md: the default mapping written out (`tokenfix mapping > m.toml`) is the same mapping:
every command gives identical JSON with `--mapping m.toml` on the demo sample (the run's own
ids and times apart)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from tests.support.clirunner import CliRunner
from tokenfix.demo.sample import STARTING_BALANCE, build_sample, telling_users

# Run ids (and user ids: the samples share theirs) and times are masked alike on both sides.
RUN_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.\d]*\+00:00")


@pytest.fixture
def sample(
    db_url: str, second_db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: CliRunner
) -> tuple[str, str, Path]:
    for url in (db_url, second_db_url):
        with psycopg.connect(url, autocommit=True) as conn:
            build_sample(conn, users=120)
    monkeypatch.setenv("TOKENFIX_STARTING_BALANCE", str(STARTING_BALANCE))
    printed = cli("mapping")
    assert printed.exit_code == 0
    mapping = tmp_path / "m.toml"
    mapping.write_text(printed.stdout)
    return db_url, second_db_url, mapping


def both(cli: CliRunner, first: str, second: str, mapping: Path, *args: str) -> tuple[str, str]:
    default = cli(*args, "-d", first)
    mapped = cli(*args, "-d", second, "--mapping", str(mapping))
    assert default.exit_code == mapped.exit_code, (args, default.stderr, mapped.stderr)
    assert mapped.stderr == default.stderr
    # The two samples were built a moment apart: their "just now" rows differ in time only.
    return same(default.stdout), same(mapped.stdout)


def same(text: str) -> str:
    """Both sides with their runs' own ids and times, and the envelope, masked alike."""
    text = re.sub(r'"(generated_at|duration_s)": [^,\n]+', r'"\1": E', text)
    text = re.sub(r"tokenfix_t\d+_\d+|127\.0\.0\.1:\d+", "D", text)
    return TIMES.sub("T", RUN_IDS.sub("R", text))


def test_the_printed_default_mapping_is_the_same_mapping_for_every_command(
    cli: CliRunner, sample: tuple[str, str, Path]
) -> None:
    first, second, mapping = sample
    assert "[balance]" in mapping.read_text() and "[[ledger]]" in mapping.read_text()
    for user in telling_users().values():
        for extra in ([], ["--ledger", "5"]):
            default, mapped = both(
                cli, first, second, mapping, "diagnose", str(user), "--json", *extra
            )
            assert default == mapped
    for args in (
        ["reconcile", "--all", "--dry-run", "--json"],
        ["reconcile", "--all", "--dry-run", "--format", "csv"],
        ["reconcile", "--all", "--dry-run", "--json", "--since", "30d"],
        ["doctor", "--json"],
    ):
        default, mapped = both(cli, first, second, mapping, *args)
        assert default == mapped, args
    # Writes, history and revert: the same rows, the runs' own ids and times apart.
    for args in (
        ["reconcile", "--all", "--yes", "--json", "--create-missing", "--settle", "0"],
        ["history", "--json"],
    ):
        default, mapped = both(cli, first, second, mapping, *args)
        assert default == mapped, args
    runs = [
        cli("history", "--json", "-d", url).json()["runs"][0]["run_id"] for url in (first, second)
    ]
    default = cli("revert", runs[0], "--yes", "--json", "-d", first)
    mapped = cli("revert", runs[1], "--yes", "--json", "-d", second, "--mapping", str(mapping))
    assert (default.exit_code, mapped.exit_code) == (0, 0)
    assert same(default.stdout) == same(mapped.stdout)


def test_a_run_written_through_the_default_mapping_reverts_through_its_file_and_not_another(
    cli: CliRunner, sample: tuple[str, str, Path], tmp_path: Path
) -> None:
    first, _, mapping = sample
    run = cli("reconcile", "--all", "--yes", "--json", "--settle", "0", "-d", first).json()
    other = tmp_path / "other.toml"
    other.write_text(mapping.read_text().replace('updated_at = "now()"\n', ""))
    refused = cli("revert", run["run_id"], "--yes", "-d", first, "--mapping", str(other))
    assert refused.exit_code == 2 and "another mapping" in refused.stderr
    assert (
        cli("revert", run["run_id"], "--yes", "-d", first, "--mapping", str(mapping)).exit_code == 0
    )
