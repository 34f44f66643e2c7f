"""Files shipped beside the package: the user-facing SQL of sql/ (schema, diagnostics, scripts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # tokenfix/


def sql_file(relative: str) -> Path:
    """`sql/<relative>`: inside the wheel (tokenfix/_sql), or in a source checkout."""
    for root in (PACKAGE / "_sql", PACKAGE.parent / "sql"):
        candidate = root / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"sql/{relative} is not installed with this copy of tokenfix")


@dataclass(frozen=True)
class SqlFile:
    name: str
    """What `tokenfix sql NAME` takes: the file's name without `.sql`."""
    relative: str
    """Its path under sql/."""
    purpose: str

    @property
    def path(self) -> Path:
        return sql_file(self.relative)


# Every file of sql/, in the order an operator meets them (a test checks none is missing).
SQL_FILES = (
    SqlFile("schema", "schema.sql",
            "the default schema's tables, with their default names, for a new install"),
    SqlFile("record_counts", "diagnostics/record_counts.sql",
            "one user's ledger rows and tokens, counted by row class"),
    SqlFile("current_balance", "diagnostics/current_balance.sql",
            "one user's cached balance (no row: the profile is missing)"),
    SqlFile("records_before_profile", "diagnostics/records_before_profile.sql",
            "one user's ledger rows written before their profile row existed"),
    SqlFile("expected_balance", "diagnostics/expected_balance.sql",
            "one user's balance recomputed from the ledger, beside the cached one, with the drift"),
    SqlFile("fix-user-token-balance", "scripts/fix-user-token-balance.sql",
            "the runbook fallback: reconcile one user's balance with nothing but psql"),
    SqlFile("citus_distribute", "citus/distribute.sql",
            "the default schema's tables distributed with Citus by owner, as tokenfix needs"),
)  # fmt: skip


def find_sql(name: str) -> SqlFile | None:
    """The shipped file called `name` (`record_counts`, `record_counts.sql` or its path)."""
    wanted = name.strip().removeprefix("sql/").removesuffix(".sql")
    for item in SQL_FILES:
        if wanted in (item.name, item.relative.removesuffix(".sql")):
            return item
    return None


_INCLUDE = re.compile(r"^\s*\\(?:ir|include_relative)\s+(\S+)\s*$")


def standalone_text(item: SqlFile) -> str:
    """The file's text with its relative includes (`\\ir`) written in place, so the output of
    `tokenfix sql NAME` runs as it is, saved anywhere or piped to `psql -f -`."""
    return _inlined(item.path)


def _inlined(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        found = _INCLUDE.match(line)
        if found is None:
            lines.append(line)
            continue
        included = (path.parent / found.group(1)).resolve()
        lines.append(f"-- {line.strip()}: included below\n")
        text = _inlined(included)
        lines.append(text if text.endswith("\n") else text + "\n")
        lines.append(f"-- end of {included.name}\n")
    return "".join(lines)
