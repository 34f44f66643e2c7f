"""`tokenfix reconcile (USER_ID… | --all)`."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    JsonOption,
    MappingOption,
    QuietOption,
    StartingBalanceOption,
    ask,
    examples,
    inputs,
    stdin_is_interactive,
    warning_line,
)
from tokenfix.errors import BadInput
from tokenfix.exitcodes import ExitCode


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class Direction(StrEnum):
    cache = "cache"
    ledger = "ledger"


class FailOn(StrEnum):
    any = "any"
    unexplained = "unexplained"
    never = "never"


EXAMPLES = examples(
    "tokenfix reconcile --all --dry-run",
    "tokenfix reconcile $USER_ID --yes",
    "tokenfix reconcile --all --since 25h --yes --format jsonl --fail-on unexplained"
    " --metrics-file /var/lib/node_exporter/tokenfix.prom >> /var/log/tokenfix.jsonl",
    "cut -d, -f1 users.csv | tokenfix reconcile - --dry-run --format csv",
    'tokenfix reconcile $USER_ID --direction ledger --reason "credit given by hand" --yes',
)


def _user_ids(arguments: list[str]) -> dict[str, str]:
    """The keys given, in order, without repeats, each with where it came from ("stdin line
    2"), for the message if the database finds it is not of the key's type."""
    ids: dict[str, str] = {}
    for argument in arguments:
        if argument == "-":
            for number, line in enumerate(sys.stdin, start=1):
                text = line.split("#", 1)[0].strip()
                if text:
                    ids.setdefault(text, f"stdin line {number}")
        else:
            ids.setdefault(argument.strip(), "")
    if not ids:
        # An empty list usually means the step that produced it failed (SPEC §4).
        raise BadInput(
            "no user ids on stdin: nothing to check",
            hint="did the command feeding the list fail? use --all to check every user",
        )
    return ids


def _format(json_output: bool, output_format: OutputFormat | None) -> OutputFormat:
    if json_output and output_format not in (None, OutputFormat.json):
        raise BadInput(f"--json and --format {output_format} disagree; give one of them")
    if json_output:
        return OutputFormat.json
    return output_format or OutputFormat.table


@app.command(epilog=EXAMPLES)
def reconcile(
    user_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[USER_ID]...",
            help="Users to check; '-' reads ids from stdin, one per line.",
            show_default=False,
        ),
    ] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Check every user.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; write nothing.")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Write without asking (required off a terminal).")
    ] = False,
    create_missing: Annotated[
        bool,
        typer.Option("--create-missing", help="Insert profile rows for users who have none."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only users with ledger rows since WHEN: an ISO time or 90m, 24h, 7d. "
            "Their balance is still recomputed from the whole ledger.",
            show_default=False,
        ),
    ] = None,
    settle: Annotated[
        str,
        typer.Option(
            "--settle",
            metavar="DURATION",
            help="Defer users with ledger rows newer than this (the app may not have applied "
            "them yet); 0 turns it off.",
        ),
    ] = "2m",
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", min=1, help="Users per transaction (default 1000).", show_default=False
        ),
    ] = None,
    max_changes: Annotated[
        int | None,
        typer.Option(
            "--max-changes",
            min=0,
            help="Refuse (exit 2, write nothing) a run that would change more rows than this "
            "(default 1000; 0: no limit).",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            help="table (default), json, jsonl (one object a line, for >> log.jsonl) or csv.",
            show_default=False,
        ),
    ] = None,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 on any drift found, only unexplained drift, or never (fixed or not; "
            "default: when something is left unfixed).",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        str,
        typer.Option(
            "--threshold",
            metavar="N",
            help="Ignore, for the exit code, users whose largest absolute drift is at most N.",
        ),
    ] = "0",
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            metavar="PATH",
            help="Write the run's metrics in the Prometheus text format (atomically).",
            show_default=False,
        ),
    ] = None,
    direction: Annotated[
        Direction,
        typer.Option(
            "--direction",
            help="cache (default): write the cache from the ledger. ledger: for the owners "
            "named, book the grant/deduct rows that make the ledger explain the cached "
            "remaining (needs --reason; the cache is not written).",
        ),
    ] = Direction.cache,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help="Why (--direction ledger; kept in the audit).",
            show_default=False,
        ),
    ] = None,
    defer_edited: Annotated[
        bool,
        typer.Option(
            "--defer-edited",
            help="Leave alone caches above expected whose balance row changed after their "
            "newest ledger row (a hand edit: a human looks; exit 1). Needs [balance] changed_at.",
        ),
    ] = False,
    exclude_file: Annotated[
        Path | None,
        typer.Option(
            "--exclude-file",
            metavar="PATH",
            help="Keys (one a line) kept out of checks and writes: owners deleted upstream.",
            show_default=False,
        ),
    ] = None,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    starting_balance: StartingBalanceOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Recompute balances from the ledger and fix the cached ones, safely, on a live database.

    Lists every user whose status is not ok. Exit 0 when nothing is left needing attention,
    1 when drift or missing profiles remain (dry run, deferred, changed during the run),
    2 for bad input or when the --max-changes brake holds, 3 for database trouble (including
    another run holding the write lock).
    """
    enable_debug(debug)
    from tokenfix.policy import ExitPolicy
    from tokenfix.settings import exact_amount

    # From here on every way the run ends, bad input included, is in the metrics (SPEC §12).
    metrics = _Metrics(metrics_file)
    try:
        fmt = _format(json_output, output_format)
        if direction is Direction.ledger or reason is not None:
            from tokenfix.cli.adjust import book_ledger

            if direction is not Direction.ledger:
                raise BadInput("--reason goes with --direction ledger")
            if all_users:
                raise BadInput("--direction ledger books rows for the owners named, not --all")
            code = book_ledger(
                _user_ids(user_ids or []), reason or "", dry_run, yes, mapping, database_url,
                env_file, fmt.value, quiet, settle,
            )  # fmt: skip
            raise typer.Exit(code)
        if bool(user_ids) == all_users:
            raise BadInput("give user ids (or '-' to read them from stdin), or --all, not both")
        interactive = stdin_is_interactive() and not any(arg == "-" for arg in user_ids or [])
        if not dry_run and not yes and not interactive:
            raise BadInput(
                "refusing to write without --yes when not on a terminal",
                hint="preview with --dry-run, then add --yes",
            )
        try:
            policy = ExitPolicy(fail_on.value if fail_on else None, exact_amount(threshold))
        except ValueError as exc:
            raise BadInput(f"--threshold {threshold!r}: {exc}") from None
        args = _Args(
            user_ids=user_ids or [], all_users=all_users, dry_run=dry_run, yes=yes,
            create_missing=create_missing, since=since, settle=settle, batch_size=batch_size,
            max_changes=max_changes, mapping=mapping, database_url=database_url,
            starting_balance=starting_balance, exclude_file=exclude_file, quiet=quiet, fmt=fmt,
            env_file=env_file, defer_edited=defer_edited,
        )  # fmt: skip
        code = _run(args, policy, metrics)
    except BaseException as exc:
        metrics.failed(exc)
        raise
    raise typer.Exit(code)


@dataclass(frozen=True)
class _Args:
    """The command's flags, parsed."""

    user_ids: list[str]
    all_users: bool
    dry_run: bool
    yes: bool
    create_missing: bool
    since: str | None
    settle: str
    batch_size: int | None
    max_changes: int | None
    mapping: Path | None
    database_url: str | None
    starting_balance: str | None
    exclude_file: Path | None
    quiet: bool
    fmt: OutputFormat
    env_file: list[Path] | None
    defer_edited: bool = False


def _run(args: _Args, policy: Any, metrics: _Metrics) -> int:
    from tokenfix import db
    from tokenfix.durations import parse_duration, parse_since
    from tokenfix.keys import BadKey
    from tokenfix.model import Selection
    from tokenfix.reconciliation import Request
    from tokenfix.reconciliation import reconcile as run_reconcile

    settings, the_mapping, starting = inputs(
        args.mapping,
        args.starting_balance,
        database_url=args.database_url,
        env_file=args.env_file,
        batch_size=args.batch_size,
        max_changes=args.max_changes,
    )
    given = _user_ids(args.user_ids) if args.user_ids else None
    request = Request(
        selection=Selection(
            keys=tuple(given) if given is not None else None,
            since=parse_since(args.since) if args.since else None,
            excluded=_excluded(args.exclude_file),
        ),
        dry_run=args.dry_run,
        create_missing=args.create_missing,
        settle=parse_duration(args.settle, option="--settle"),
        batch_size=settings.batch_size,
        max_changes=settings.max_changes,
        defer_edited=args.defer_edited,
    )
    ui = _Feedback(
        show=args.all_users and not args.quiet,
        target=settings,
        quiet=args.quiet or args.fmt is OutputFormat.jsonl,
        dry_run=args.dry_run,
    )
    with db.connect(settings) as conn:
        try:
            outcome = run_reconcile(
                conn,
                settings,
                request,
                mapping=the_mapping,
                starting_balance=starting,
                confirm=None if args.yes else ui.confirm,
                on_plan=ui.planned,
                on_progress=ui.advance,
                on_warning=ui.warn,
            )
        except BadKey as exc:
            label = (given or {}).get(exc.key)
            raise BadInput(f"{label}: {exc.message}" if label else exc.message) from None
    ui.done()
    with outcome:
        _print(outcome, args.fmt, args.quiet)
        code = ExitCode.ATTENTION if policy.attention(outcome.changes) else ExitCode.OK
        metrics.done(code, outcome)
    return code


def _excluded(path: Path | None) -> tuple[str, ...]:
    """Keys one a line (# comments and blank lines ignored): owners deleted upstream."""
    if path is None:
        return ()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadInput(f"cannot read --exclude-file {path}: {exc.strerror or exc}") from None
    return tuple(dict.fromkeys(t for line in lines if (t := line.split("#", 1)[0].strip())))


class _Metrics:
    """--metrics-file: written at the end of every run, however it ends."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.started = time.monotonic()

    def done(self, code: int, outcome: Any) -> None:
        if self.path is not None:
            from tokenfix import metrics

            duration = time.monotonic() - self.started
            metrics.write(self.path, exit_code=code, duration_s=duration, outcome=outcome)
            self.path = None  # written: a later failure must not overwrite it

    def failed(self, exc: BaseException) -> None:
        if self.path is None:
            return
        from tokenfix import metrics
        from tokenfix.errors import exit_code_for

        code = int(exc.exit_code) if isinstance(exc, typer.Exit) else exit_code_for(exc)
        duration = time.monotonic() - self.started
        metrics.write(self.path, exit_code=code, duration_s=duration)


def _print(outcome: Any, fmt: OutputFormat, quiet: bool) -> None:
    # rich only for people: cron's JSON and CSV paths never load it.
    if fmt in (OutputFormat.json, OutputFormat.jsonl):
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        if fmt is OutputFormat.json:
            json.write_outcome(sys.stdout, outcome, envelope())
        else:
            json.write_lines(sys.stdout, outcome, envelope())
    elif fmt is OutputFormat.csv:
        from tokenfix.render import csv

        csv.write_outcome(sys.stdout, outcome)
    elif not quiet:
        from tokenfix.render.console import make_consoles
        from tokenfix.render.reconcile import render_outcome

        render_outcome(make_consoles()[0], outcome)
    sys.stdout.flush()


class _Feedback:
    """Prompt and progress on stderr, on a terminal only."""

    def __init__(self, *, show: bool, target: Any, quiet: bool, dry_run: bool) -> None:
        # rich only when there is a terminal to draw on: cron runs skip its import.
        self.show = show and sys.stderr.isatty()
        self.target = target
        self.quiet = quiet
        self.dry_run = dry_run
        self.err: Any = None
        if self.show or sys.stdin.isatty():
            from tokenfix.render.console import make_consoles

            _, self.err = make_consoles()
        self.progress: Any = None
        self.task: Any = None
        self.warned: list[str] = []
        self.status = self.err.status("scanning the ledger…") if self.show else None
        if self.status is not None:
            self.status.start()

    def warn(self, warning: str) -> None:
        """A warning known before the scan (row-level security): shown at once, not again."""
        self.warned.append(warning)
        if not self.quiet:
            warning_line(warning)

    def planned(self, plan: Any) -> None:
        if self.status is not None:
            self.status.stop()
        if not self.quiet:
            for warning in plan.warnings:
                if warning not in self.warned:
                    warning_line(warning)
        if not self.show:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("checking" if self.dry_run else "writing"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self.err,
            transient=True,
        )
        self.task = self.progress.add_task("write", total=plan.candidates.count)
        self.progress.start()

    def advance(self, users: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, users)

    def done(self) -> None:
        if self.status is not None:
            self.status.stop()
        if self.progress is not None:
            self.progress.stop()

    def confirm(self, plan: Any, planned: int) -> bool:
        from tokenfix.db import database_url, describe_target
        from tokenfix.render.console import make_consoles
        from tokenfix.words import plural

        self.err = self.err or make_consoles()[1]
        if self.progress is not None:
            self.progress.stop()
        counts = plan.counts
        self.err.print(
            f"{plural(counts.users_with_drift, 'user')} with drift and "
            f"{plural(counts.missing_profiles, 'missing profile')} found; "
            f"{plural(planned, 'row')} would be written to "
            f"{describe_target(database_url(self.target))}."
        )
        answer = ask("Write them?", timeout=self.target.prompt_timeout)
        if self.progress is not None:
            self.progress.start()
        return answer
