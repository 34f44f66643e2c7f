"""`import tokenfix`: a small public API, usable without the command-line stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import tokenfix
from tests.support.builders import Ledger
from tokenfix.base.records import Change

ROOT = Path(__file__).resolve().parents[2]
CLI_STACK = ("rich", "typer", "click")


def python(code: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "TOKENFIX_DATABASE_URL": db_url},
        cwd=ROOT,
    )


def drifting(ledger: Ledger) -> str:
    return str(ledger.drifting(40, remaining=5))


def test_every_name_in_all_resolves() -> None:
    for name in tokenfix.__all__:
        assert getattr(tokenfix, name) is not None, name


def test_the_api_diagnoses_and_dry_runs_without_loading_the_cli_stack(
    db_url: str, ledger: Ledger
) -> None:
    user = drifting(ledger)
    code = f"""
import json, sys
import tokenfix
settings = tokenfix.load_settings()
with tokenfix.connect(settings) as conn:
    d = tokenfix.diagnose(conn, settings, {user!r})
    with tokenfix.reconcile(conn, settings, tokenfix.Request(tokenfix.Selection())) as outcome:
        changes = [(c.key, c.drift.tokens_remaining, c.skipped) for c in outcome.changes]
    runs = tokenfix.history(conn, settings, 5)
print(json.dumps({{"status": d.status, "drift": d.drift.tokens_remaining, "changes": changes,
                  "runs": len(runs), "loaded": [m for m in {CLI_STACK!r} if m in sys.modules]}}))
"""
    done = python(code, db_url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {
        "status": "drift",
        "drift": 45,
        "changes": [[user, 45, "dry_run"]],
        "runs": 0,
        "loaded": [],
    }


def test_the_api_writes_and_reverts_with_typed_records(db_url: str, ledger: Ledger) -> None:
    user = drifting(ledger)
    settings = tokenfix.load_settings(database_url=db_url)
    with tokenfix.connect(settings) as conn:
        request = tokenfix.Request(tokenfix.Selection(keys=(user,)), dry_run=False)
        with tokenfix.reconcile(conn, settings, request) as outcome:
            (change,) = list(outcome.changes)
            run_id = outcome.run_id
        assert isinstance(change, Change) and change.applied
        assert change.expected == tokenfix.Pair(-40, 40)
        assert ledger.cached(uuid.UUID(user)) == (-40, 40)
        assert run_id is not None
        undone = tokenfix.revert(conn, settings, run_id)
        assert undone.rows_restored == 1


def test_a_bad_setting_is_an_exception_with_its_exit_code() -> None:
    try:
        tokenfix.load_settings(statement_timeout="forever")
    except tokenfix.BadInput as exc:
        assert tokenfix.exit_code_for(exc) == 2
    else:
        raise AssertionError("no error")


def test_the_json_and_quiet_paths_of_the_cli_do_not_load_rich(db_url: str, ledger: Ledger) -> None:
    user = drifting(ledger)
    for args in (
        ["reconcile", "--all", "--dry-run", "--json"],
        ["reconcile", "--all", "--dry-run", "--format", "csv"],
        ["reconcile", "--all", "--dry-run", "--quiet"],
        ["diagnose", user, "--json"],
        ["history", "--json"],
        ["doctor", "--json", "--no-probe"],
    ):
        code = (
            "import sys\nfrom tokenfix.cli import run\n"
            f"exit_code = run({args!r})\n"
            "print('rich' in sys.modules, exit_code, file=sys.stderr)"
        )
        done = python(code, db_url)
        assert done.stderr.strip().splitlines()[-1].startswith("False"), (args, done.stderr)


def test_the_readme_python_example_runs(db_url: str, ledger: Ledger) -> None:
    drifting(ledger)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- readme-python -->\n```python\n(.*?)```", readme, re.S)
    assert found, "README lost its 'Use it from Python' example"
    done = python(found.group(1), db_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].endswith("dry_run") and "Pair(tokens_remaining=45" in lines[0]
    assert lines[-1].startswith("drift [")


def test_the_layers_contract_names_every_package_and_the_root_stays_small() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = config["tool"]["importlinter"]["contracts"][0]
    assert contract["type"] == "layers"
    listed = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    package = ROOT / "tokenfix"
    packages = {f"tokenfix.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}
    assert packages | {"tokenfix.entry"} == listed
    root_modules = sorted(p.name for p in package.glob("*.py"))
    assert root_modules == ["__init__.py", "__main__.py", "entry.py"]
