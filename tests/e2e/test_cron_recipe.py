"""The README's crontab line runs as written (docs/monitoring.md): under `env -i` with cron's
PATH, as cron would start it, against a test database. The system paths it names are moved
under a scratch root; nothing else of the line is changed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.db.test_monitoring import metrics
from tests.support.builders import Ledger

README = Path(__file__).resolve().parents[2] / "README.md"
CRON_PATH = "/usr/bin:/bin"  # what cron gives a job (Debian's cron, no PATH= line)
SYSTEM_PATH = re.compile(r"(?<![\w.])/(?=(?:var|etc|usr/local)/)")


def crontab() -> tuple[str, str, str]:
    """The README's crontab entry: (schedule, user, command)."""
    block = re.search(r"<!-- readme-crontab -->\n```text\n(.*?)```", README.read_text(), re.S)
    assert block, "README lost its crontab recipe"
    entries = [line for line in block.group(1).splitlines() if line and line[0] not in "#"]
    (entry,) = [line for line in entries if not re.match(r"^\w+=", line)]
    fields = entry.split(None, 6)
    return " ".join(fields[:5]), fields[5], fields[6]


def test_the_crontab_line_names_its_user_debians_textfile_directory_and_no_percent() -> None:
    schedule, user, command = crontab()
    assert schedule == "15 5 * * *" and user == "tokenfix"
    assert "--metrics-file /var/lib/prometheus/node-exporter/" in command
    assert "%" not in command  # cron turns it into a newline
    assert f"useradd --system --home-dir /var/lib/{user}" in README.read_text()


def test_the_readme_crontab_line_runs_under_cron_environment(
    db_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    user = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(user, 1000, action="admin_grant", at=datetime.now(UTC) - timedelta(hours=2))
    ledger.row(user, 100, at=datetime.now(UTC) - timedelta(hours=2))
    _, _, command = crontab()
    root = tmp_path / "root"
    (root / "etc" / "tokenfix").mkdir(parents=True)
    (root / "etc" / "tokenfix" / ".env").write_text(f"TOKENFIX_DATABASE_URL={db_url}\n")
    # The recipe's mapping: the default one as a file, with changed_at added under [balance].
    default = subprocess.run(
        [sys.executable, "-m", "tokenfix", "mapping"], capture_output=True, text=True,
        check=True, cwd=tmp_path, env={"PATH": CRON_PATH},
    ).stdout  # fmt: skip
    mapping = default.replace("[balance]\n", '[balance]\nchanged_at = "updated_at"\n', 1)
    (root / "etc" / "tokenfix" / "tokenfix.toml").write_text(mapping)
    (root / "var" / "lib" / "prometheus" / "node-exporter").mkdir(parents=True)
    executable = re.search(r"(/\S+/tokenfix) reconcile ", command)
    assert executable, "the line does not name tokenfix by its absolute path"
    installed = Path(str(root) + executable.group(1))
    installed.parent.mkdir(parents=True)
    installed.symlink_to(Path(sys.executable).parent / "tokenfix")
    assert shutil.which("tokenfix", path=CRON_PATH) is None  # as on a host with pipx or uv
    done = subprocess.run(
        ["env", "-i", f"PATH={CRON_PATH}", "SHELL=/bin/sh", f"HOME={tmp_path}",
         "LOGNAME=tokenfix", "/bin/sh", "-c", SYSTEM_PATH.sub(f"{root}/", command)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    log = root / "var" / "log" / "tokenfix" / "reconcile.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["change", "summary"]
    assert lines[-1]["users_updated"] == 1
    found = metrics(root / "var" / "lib" / "prometheus" / "node-exporter" / "tokenfix.prom")
    assert found["tokenfix_exit_code"] == {(): 0}
    assert ledger.cached(user) == (900, 100)
