"""The command's edges: -h, a quick --version and --help, a closed stdout pipe, what to
install when no PostgreSQL can start, no third-party warnings, an installable package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tokenfix import __version__
from tokenfix.demo.pgserver import INSTALL_HINT

ROOT = Path(__file__).resolve().parents[2]
# What `tokenfix ARGS` loaded by the time it exited, printed on stderr as JSON.
LOADED = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write(json.dumps(sorted(
    {name.split('.')[0] for name in sys.modules})) + '\\n'))
sys.argv = ['tokenfix', *sys.argv[1:]]
from tokenfix.entry import main
main()
"""


def loaded_by(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *args], capture_output=True, text=True, timeout=60
    )
    return done, set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_version_loads_neither_psycopg_nor_typer_pydantic_or_rich() -> None:
    done, loaded = loaded_by("--version")
    assert (done.returncode, done.stdout) == (0, f"tokenfix {__version__}\n")
    assert not loaded & {"psycopg", "typer", "click", "pydantic", "pydantic_settings", "rich"}


def test_the_quick_version_is_the_clis_own(capsys: pytest.CaptureFixture[str]) -> None:
    done, _ = loaded_by("--version")
    assert CliRunner(capsys)("--version").stdout == done.stdout


def test_help_loads_neither_pydantic_nor_the_settings() -> None:
    done, loaded = loaded_by("--help")
    assert done.returncode == 0 and "reconcile" in done.stdout
    assert not loaded & {"pydantic", "pydantic_settings", "simplejson"}


def test_help_does_not_load_psycopg() -> None:
    _, loaded = loaded_by("--help")
    assert "psycopg" not in loaded


@pytest.mark.parametrize("args", [[], ["diagnose"], ["reconcile"], ["config"], ["sql"]])
def test_h_is_help_everywhere(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    tokenfix = CliRunner(capsys)
    short, long = tokenfix(*args, "-h"), tokenfix(*args, "--help")
    assert (short.exit_code, short.stderr) == (0, "")
    assert short.stdout == long.stdout and "Usage" in short.stdout


def into_a_closed_pipe(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`tokenfix ARGS | head -0`, deterministically: the reader is gone before a byte is
    written."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [sys.executable, "-m", "tokenfix", *args], stdout=writer, stderr=subprocess.PIPE,
            text=True, timeout=60, env={**os.environ, **env},
        )  # fmt: skip
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "args",
    [
        ["reconcile", "--all", "--dry-run"],
        ["reconcile", "--all", "--dry-run", "--json"],
        ["reconcile", "--help"],
    ],
)
def test_a_closed_stdout_ends_quietly_with_141(
    db_url: str, ledger: Ledger, args: list[str]
) -> None:
    for _ in range(30):
        user = ledger.profile(ledger.user(), remaining=5)
        ledger.row(user, 40, at=datetime.now(UTC) - timedelta(hours=1))
    done = into_a_closed_pipe(*args, TOKENFIX_DATABASE_URL=db_url)
    assert (done.returncode, done.stderr) == (141, "")


def test_no_server_says_to_install_the_server_extra() -> None:
    assert "pip install 'tokenfix[server]'" in INSTALL_HINT
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")}
    done = subprocess.run(
        [sys.executable, "-m", "tokenfix", "demo"], capture_output=True, text=True, timeout=60,
        env={**env, "TOKENFIX_PG_SERVER": "binaries", "PG_BINDIR": "/nonexistent"},
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.splitlines()[-1].endswith(f"To fix: {INSTALL_HINT}")


def test_the_embedded_route_lets_no_third_party_warning_through() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c",
         "from tokenfix.demo.pgserver import find_embedded_bindir; print(find_embedded_bindir())"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.strip().endswith("pginstall/bin")  # the route really imported it
    assert done.stderr == ""


def test_the_package_installs_with_its_license_and_its_sql(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The dependencies come from this environment: the package under test is the fresh copy.
    site = next(venv.glob("lib/python*/site-packages"))
    deps = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "deps.pth").write_text(f"{deps}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-deps", str(ROOT)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    tool = str(venv / "bin" / "tokenfix")
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout == f"tokenfix {__version__}\n"
    where = subprocess.run([tool, "sql", "fix-user-token-balance", "--path"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert where.stdout.startswith(str(site / "tokenfix" / "_sql" / "scripts"))
    licenses = list(site.glob("tokenfix-*.dist-info/licenses/LICENSE"))
    assert licenses and "MIT License" in licenses[0].read_text()


def test_the_quick_exit_still_runs_atexit_handlers_and_keeps_every_byte_and_the_code() -> None:
    # entry.main skips the interpreter's teardown (os._exit); what a run printed, still in
    # stdout's buffer (7 KB: less than one), and its exit code must not depend on it.
    done = subprocess.run(
        [sys.executable, "-c", LOADED, "sql", "fix-user-token-balance"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.rstrip().endswith("COMMIT;") and len(done.stdout) > 7000
    assert "tokenfix" in json.loads(done.stderr.strip().splitlines()[-1])  # the atexit handler
    unknown = subprocess.run(
        [sys.executable, "-m", "tokenfix", "sql", "no-such-file"], capture_output=True, text=True
    )
    assert (unknown.returncode, unknown.stderr.count("\n"), unknown.stdout) == (2, 1, "")
