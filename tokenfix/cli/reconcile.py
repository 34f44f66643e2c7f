"""`tokenfix reconcile (USER_ID… | --all)`."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokenfix.base.errors import BadInput
from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli import metricsfile
from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    JsonOption,
    MappingOption,
    QuietOption,
    StartingBalanceOption,
    examples,
    inputs,
    stdin_is_interactive,
)

if TYPE_CHECKING:
    pass


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
    " --metrics-file /var/lib/prometheus/node-exporter/tokenfix.prom >> /var/log/tokenfix.jsonl",
    "cut -d, -f1 users.csv | tokenfix reconcile - --dry-run --format csv",
    'tokenfix reconcile $USER_ID --direction ledger --reason "credit given by hand" --yes',
)


def _user_ids(arguments: list[str]) -> dict[str, str]:
    """The keys given, in order, without repeats, each with where it came from ("stdin line
    2"), for the message if the database finds it is not of the key's type."""
    from tokenfix.config import key_lists

    ids: dict[str, str] = {}
    for argument in arguments:
        if argument == "-":
            # Bytes, so that a line that is not UTF-8 is named, not an UnicodeDecodeError.
            stream = getattr(sys.stdin, "buffer", None)
            lines = stream if stream is not None else io.BytesIO(sys.stdin.read().encode())
            for key, where in key_lists.read(lines, lambda n: f"stdin line {n}").items():
                ids.setdefault(key, where)
        else:
            ids.setdefault(argument.strip(), "")
    if not ids:
        # An empty list usually means the step that produced it failed (docs/commands.md).
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
            metavar="FORMAT",
            help="table (default), json, jsonl (one object a line, for >> log.jsonl) or csv.",
            show_default=False,
        ),
    ] = None,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            metavar="POLICY",
            help="When to exit 1: any (drift found, fixed or not), unexplained (drift no cause "
            "explains) or never (default: when something is left unfixed).",
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
    # Every way the run ends, bad input included, is in the metrics: run() writes the exit
    # code of any ending that did not write the run's numbers (docs/monitoring.md).
    metricsfile.expect(metrics_file)
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
    if user_ids and all_users:
        raise BadInput("give user ids or --all, not both")
    if not user_ids and not all_users:
        # --since narrows a selection; alone it names none (docs/commands.md).
        narrowing = "--since narrows the users given: " if since is not None else ""
        raise BadInput(f"{narrowing}give user ids (or '-' to read them from stdin), or --all")
    interactive = stdin_is_interactive() and not any(arg == "-" for arg in user_ids or [])
    if not dry_run and not yes and not interactive:
        raise BadInput(
            "refusing to write without --yes when not on a terminal",
            hint="preview with --dry-run, then add --yes",
        )
    # The progress line is on from here to the output: reading the settings alone takes a
    # second on a small VM, and a person should never look at a blank terminal.
    ui = _feedback(all_users and not quiet, quiet or fmt is OutputFormat.jsonl, dry_run)
    try:
        from tokenfix.config.settings import exact_amount
        from tokenfix.reconciliation.exit_policy import ExitPolicy

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
        code = _run(args, policy, ui)
    finally:
        ui.done()
    raise typer.Exit(code)


def _feedback(show: bool, quiet: bool, dry_run: bool) -> Any:
    from tokenfix.cli.envelope import started
    from tokenfix.cli.feedback import Feedback

    return Feedback(show=show, quiet=quiet, dry_run=dry_run, started=started())


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


def _run(args: _Args, policy: Any, ui: Any) -> int:
    try:
        outcome = _reconcile(args, ui)
    finally:
        ui.done()  # before the output: the progress line is gone when the table comes
    with outcome:
        _print(outcome, args.fmt, args.quiet)
        alerting = policy.counted(outcome.changes)
        code = ExitCode.ATTENTION if alerting else ExitCode.OK
        metricsfile.done(code, outcome, alerting)
    return code


def _reconcile(args: _Args, ui: Any) -> Any:
    from tokenfix.cli.envelope import remember_run
    from tokenfix.config.durations import parse_duration, parse_since
    from tokenfix.db import session
    from tokenfix.ledger.keys import BadKey
    from tokenfix.ledger.model import Selection
    from tokenfix.reconciliation.run import Request
    from tokenfix.reconciliation.run import reconcile as run_reconcile

    settings, the_mapping, starting = inputs(
        args.mapping,
        args.starting_balance,
        database_url=args.database_url,
        env_file=args.env_file,
        batch_size=args.batch_size,
        max_changes=args.max_changes,
    )
    given = _user_ids(args.user_ids) if args.user_ids else None
    excluded = _excluded(args.exclude_file)
    request = Request(
        selection=Selection(
            keys=tuple(given) if given is not None else None,
            since=parse_since(args.since) if args.since else None,
            excluded=tuple(excluded),
        ),
        dry_run=args.dry_run,
        create_missing=args.create_missing,
        settle=parse_duration(args.settle, option="--settle"),
        batch_size=settings.batch_size,
        max_changes=settings.max_changes,
        defer_edited=args.defer_edited,
        max_changes_source=_source_of(settings, "max_changes"),
    )
    ui.request = request
    ui.asks = not args.yes
    ui.connecting(settings)
    with session.connect(settings) as conn:
        ui.reading()
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
                on_run=remember_run,
            )
        except BadKey as exc:
            label = (given or {}).get(exc.key) or excluded.get(exc.key)
            raise BadInput(f"{label}: {exc.message}" if label else exc.message) from None
    return outcome


def _source_of(settings: Any, name: str) -> str:
    """Where a setting was set, as an error names it: `TOKENFIX_MAX_CHANGES in /etc/x.env`."""
    from tokenfix.config.settings import variable_for

    origin = settings.origin(name)
    return str(origin) if origin.kind != "default" else f"the default of {variable_for(name)}"


def _excluded(path: Path | None) -> dict[str, str]:
    """Keys one a line (# comments and blank lines ignored): owners deleted upstream; each
    with its file and line, for the message if one is not a key."""
    from tokenfix.config import key_lists

    if path is None:
        return {}
    try:
        with path.open("rb") as lines:
            return key_lists.read(lines, lambda n: f"--exclude-file {path}, line {n}")
    except OSError as exc:
        raise BadInput(f"cannot read --exclude-file {path}: {exc.strerror or exc}") from None


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
