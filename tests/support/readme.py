"""Keep the README honest: run every command it shows, and regenerate or check its outputs.

    python -m tests.support.readme commands   # run every `sh` command of README.md on a demo database
    python -m tests.support.readme check      # do the captured outputs still match the tool?
    python -m tests.support.readme update     # recapture them (after changing the output on purpose)

Commands are the lines of ```sh blocks (`make …` lines are left to CI, which runs them from a
fresh clone). Captured outputs sit between `<!-- readme-output: ARGS -->` and
`<!-- /readme-output -->`; ARGS are tokenfix arguments, `;` separating set-up commands from
the one whose output is shown. Each runs on a fresh copy of the `tokenfix demo` sample.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
OUTPUT = re.compile(
    r"<!-- readme-output: (?P<args>.*?) -->\n(?P<body>.*?)<!-- /readme-output -->", re.S
)
# A file quoted whole: `<!-- readme-file: PATH -->` then a fenced block holding PATH's text.
QUOTED = re.compile(r"<!-- readme-file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)^```$", re.S | re.M)
FENCE = re.compile(r"^```(?P<info>\S*)\n(?P<body>.*?)^```$", re.S | re.M)


@dataclass(frozen=True)
class Command:
    line: int
    text: str


def commands(readme: str) -> list[Command]:
    found = []
    for block in FENCE.finditer(readme):
        if block.group("info") != "sh":
            continue
        first = readme[: block.start("body")].count("\n") + 1
        for offset, text in enumerate(block.group("body").splitlines()):
            if text.strip() and not text.startswith("make "):
                found.append(Command(first + offset, text))
    return found


def variables() -> dict[str, str]:
    from tokenfix.demo.sample import telling_users

    telling = telling_users()
    return {
        "USER_ID": str(telling["stopped_updating"]),
        "STOPPED_USER": str(telling["stopped_updating"]),
        "OVERRIDES_USER": str(telling["overrides_not_applied"]),
    }


def demo_database(admin_url: str) -> str:
    from tokenfix.cli.demo import create_demo_database

    return create_demo_database(admin_url, 200)


def environment(url: str) -> dict[str, str]:
    from tokenfix.demo.pgserver import find_program
    from tokenfix.demo.sample import STARTING_BALANCE

    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")}
    psql = find_program("psql")
    path = [str(Path(sys.executable).parent)] + ([str(psql.parent)] if psql else [])
    env.update(
        TOKENFIX_DATABASE_URL=url,
        TOKENFIX_STARTING_BALANCE=str(STARTING_BALANCE),
        PATH=os.pathsep.join([*path, env.get("PATH", "")]),
        COLUMNS="160",
        **variables(),
    )
    return env


def latest_run(url: str) -> dict[str, str]:
    """RUN_ID: the latest reconcile run; RUN_USER: the first owner it changed."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('tokenfix.runs') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return {"RUN_ID": "", "RUN_USER": ""}
        row = conn.execute(
            "SELECT r.run_id, (SELECT min(c.key) FROM tokenfix.changes c"
            "                  WHERE c.run_id = r.run_id)"
            " FROM tokenfix.runs r WHERE r.command = 'reconcile'"
            " ORDER BY r.started_at DESC LIMIT 1"
        ).fetchone()
    return {"RUN_ID": str(row[0]), "RUN_USER": str(row[1] or "")} if row else {}


def run_commands(admin_url: str) -> list[str]:
    """Run every README command in order on one demo database; return the failures."""
    url = demo_database(admin_url)
    failures = []
    with tempfile.TemporaryDirectory() as workdir:
        for shared in ("sql", "examples"):
            (Path(workdir) / shared).symlink_to(ROOT / shared)
        for command in commands(README.read_text(encoding="utf-8")):
            env = {**environment(url), **latest_run(url)}
            done = subprocess.run(
                ["bash", "-c", command.text], cwd=workdir, env=env,
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if done.returncode not in (0, 1) or "Traceback" in done.stderr:
                failures.append(f"README.md:{command.line}: {command.text!r} exited "
                                f"{done.returncode}: {done.stderr.strip()[-500:]}")  # fmt: skip
    return failures


def capture(admin_url: str, args: str) -> str:
    """The output of `tokenfix ARGS` on a fresh demo database, as a fenced block."""
    url = demo_database(admin_url)
    env = environment(url)
    *setup, shown = [part.strip() for part in args.split(";")]
    for step in setup:
        subprocess.run(
            [sys.executable, "-m", "tokenfix", *shlex.split(os.path.expandvars(step))],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    argv = shlex.split(_expand(shown, env))
    done = subprocess.run(
        [sys.executable, "-m", "tokenfix", *argv], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    lines = [line.rstrip() for line in done.stdout.rstrip().splitlines()]
    return f"```text\n$ tokenfix {shlex.join(argv)}\n" + "\n".join(lines) + "\n```\n"


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), m.group(0)), text)


def stale_quotes(readme: str) -> list[str]:
    """Files the README quotes whole whose quote no longer matches the file."""
    return [
        f"README's quote of {m.group('path')} differs from the file"
        for m in QUOTED.finditer(readme)
        if (ROOT / m.group("path")).read_text(encoding="utf-8") != m.group("body")
    ]


def outputs(readme: str) -> Iterator[re.Match[str]]:
    return OUTPUT.finditer(readme)


def update(admin_url: str) -> None:
    text = README.read_text(encoding="utf-8")

    def fresh(match: re.Match[str]) -> str:
        args = match.group("args")
        return f"<!-- readme-output: {args} -->\n{capture(admin_url, args)}<!-- /readme-output -->"

    README.write_text(OUTPUT.sub(fresh, text), encoding="utf-8")


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:\d{2})?)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalize(text: str, sample_users: set[str]) -> str:
    """Mask what differs between two honest runs: run ids, 'now', host, server version, widths."""
    from tokenfix.demo.sample import BASE

    def when(match: re.Match[str]) -> str:
        return "<now>" if match.group(0)[:10] >= BASE.date().isoformat() else match.group(0)

    text = _TIMESTAMP.sub(when, text)
    text = _UUID.sub(lambda m: m.group(0) if m.group(0) in sample_users else "<run>", text)
    text = re.sub(r"PostgreSQL [^,]+,", "PostgreSQL <version>,", text)
    text = re.sub(r'"duration_s": [\d.]+', '"duration_s": <s>', text)
    text = re.sub(r'"tool_version": "[^"]*"', '"tool_version": <v>', text)
    text = re.sub(r"@[\w.-]+(:\d+)?", "@<host>", text)
    text = re.sub(r"[─━┃│╇╋┼\s]+", " ", text)
    return text.strip()


def check(admin_url: str) -> list[str]:
    """Captured outputs that no longer match a fresh run (after `normalize`)."""
    with psycopg.connect(demo_database(admin_url)) as conn:
        users = {str(row[0]) for row in conn.execute(
            "SELECT user_id FROM user_profiles UNION SELECT user_id FROM token_usage"
        )}  # fmt: skip
    stale = []
    for match in outputs(README.read_text(encoding="utf-8")):
        args = match.group("args")
        if normalize(match.group("body"), users) != normalize(capture(admin_url, args), users):
            stale.append(
                f"README output of 'tokenfix {args}' is stale: python -m tests.support.readme update"
            )
    return stale


def main() -> int:
    from tokenfix.demo.pgserver import start_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["commands", "check", "update"])
    parser.add_argument("--database-url", help="an admin URL of a server to use (else a throwaway)")
    options = parser.parse_args()
    server = start_server(options.database_url)
    try:
        if options.action == "update":
            update(server.url)
            return 0
        problems = run_commands(server.url) if options.action == "commands" else check(server.url)
    finally:
        server.stop()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{options.action}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
