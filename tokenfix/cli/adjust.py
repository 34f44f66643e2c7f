"""`tokenfix grant KEY AMOUNT --reason TEXT` and `tokenfix deduct …`: support adjustments
that go through the ledger (docs/commands.md, support adjustments)."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Annotated, Any

import typer

from tokenfix.base.errors import BadInput
from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.formats import Format, FormatOption, chosen, write
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    JsonOption,
    MappingOption,
    QuietOption,
    ask,
    examples,
    inputs,
    stdin_is_interactive,
)

KeyArgument = Annotated[
    str, typer.Argument(metavar="KEY", help="The owner (a user id by default).")
]
AmountArgument = Annotated[
    str, typer.Argument(metavar="AMOUNT", help="A positive amount, e.g. 500 or 12.5.")
]
ReasonOption = Annotated[
    str,
    typer.Option(
        "--reason",
        metavar="TEXT",
        help="Why (kept in the audit; history shows it).",
        show_default=False,
    ),
]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        metavar="K",
        help="A retried command with the same key books nothing and exits 0.",
        show_default=False,
    ),
]
CreateMissingOption = Annotated[
    bool,
    typer.Option(
        "--create-missing",
        help="Create the balance row of an owner who has none (its ledger's balance, plus AMOUNT).",
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Write without asking (required off a terminal).")
]


def _adjust(
    kind: Any,
    key: str,
    amount: str,
    reason: str,
    idempotency_key: str | None,
    yes: bool,
    mapping: Any,
    database_url: str | None,
    env_file: Any,
    fmt: Format,
    quiet: bool,
    create_missing: bool = False,
) -> None:
    from tokenfix.audit.adjust import adjust, parse_request
    from tokenfix.db import session
    from tokenfix.render.adjust import adjust_document, adjust_json, adjust_lines, preview_lines

    request = parse_request(kind, key, amount, reason, idempotency_key)
    request = replace(request, create_missing=create_missing)
    interactive = stdin_is_interactive()
    if not yes and not interactive:
        raise BadInput(
            f"refusing to {kind} without --yes when not on a terminal; nothing was written"
        )
    settings, the_mapping, _ = inputs(mapping, database_url=database_url, env_file=env_file)

    def confirm(outcome: Any) -> bool:
        for line in preview_lines(outcome.booking):
            sys.stderr.write(line + "\n")
        return ask("Book it?", timeout=settings.prompt_timeout)

    with session.connect(settings) as conn:
        outcome = adjust(
            conn, settings, request, mapping=the_mapping, confirm=None if yes else confirm
        )
    if fmt is Format.json:
        from tokenfix.cli.envelope import envelope

        sys.stdout.write(adjust_json(outcome, envelope()) + "\n")
    elif fmt is not Format.table:
        from tokenfix.cli.envelope import envelope

        write(fmt, adjust_document(outcome, envelope()), line_type="adjustment")
    elif not quiet:
        for line in adjust_lines(outcome):
            sys.stdout.write(line + "\n")
    raise typer.Exit(ExitCode.OK)


# A negative AMOUNT ("-5") is an argument to refuse with a clear message, not an unknown option.
_CONTEXT = {"ignore_unknown_options": True}

GRANT_EXAMPLES = examples(
    'tokenfix grant $USER_ID 500 --reason "refund for ticket #4411"',
    'tokenfix grant $USER_ID 500 --reason "ticket #4411" --idempotency-key ticket-4411 --yes',
)
DEDUCT_EXAMPLES = examples(
    'tokenfix deduct $USER_ID 200 --reason "duplicate refund, ticket #4411"',
)


@app.command(epilog=GRANT_EXAMPLES, context_settings=_CONTEXT)
def grant(
    key: KeyArgument,
    amount: AmountArgument,
    reason: ReasonOption,
    idempotency_key: IdempotencyOption = None,
    yes: YesOption = False,
    create_missing: CreateMissingOption = False,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    json_output: JsonOption = False,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Credit an owner through the ledger: book a grant row and raise the cache by AMOUNT.

    One transaction: the ledger row the balance model counts as a grant, and the cached
    remaining moved by exactly AMOUNT (drift the owner already had is reported, never wiped).
    Audited as a run; 'tokenfix revert RUN_ID' takes both back. Exit 0 when booked (or already
    booked under --idempotency-key), 2 for bad input (nothing written), 3 for database trouble.
    """
    enable_debug(debug)
    _adjust(
        "grant",
        key,
        amount,
        reason,
        idempotency_key,
        yes,
        mapping,
        database_url,
        env_file,
        chosen(json_output, output_format),
        quiet,
        create_missing,
    )


@app.command(epilog=DEDUCT_EXAMPLES, context_settings=_CONTEXT)
def deduct(
    key: KeyArgument,
    amount: AmountArgument,
    reason: ReasonOption,
    idempotency_key: IdempotencyOption = None,
    yes: YesOption = False,
    create_missing: CreateMissingOption = False,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    json_output: JsonOption = False,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Debit an owner through the ledger: book a deduct row and lower the cache by AMOUNT.

    The mirror of 'tokenfix grant' (same transaction, audit, revert and exit codes).
    """
    enable_debug(debug)
    _adjust(
        "deduct",
        key,
        amount,
        reason,
        idempotency_key,
        yes,
        mapping,
        database_url,
        env_file,
        chosen(json_output, output_format),
        quiet,
        create_missing,
    )


def book_ledger(
    given: dict[str, str],
    reason: str,
    dry_run: bool,
    yes: bool,
    mapping: Any,
    database_url: str | None,
    env_file: Any,
    fmt: str,
    quiet: bool,
    settle: str = "2m",
) -> int:
    """`reconcile KEY… --direction ledger --reason TEXT`: book what the ledger lacks."""
    from tokenfix.audit.adjust import book_to_ledger
    from tokenfix.config.durations import parse_duration
    from tokenfix.db import session
    from tokenfix.render.adjust import ledger_json, ledger_lines

    if not reason.strip():
        raise BadInput("--direction ledger needs --reason TEXT (kept in the audit)")
    settle_window = parse_duration(settle, option="--settle")
    if not dry_run and not yes and not stdin_is_interactive():
        raise BadInput(
            "refusing to write without --yes when not on a terminal",
            hint="preview with --dry-run, then add --yes",
        )
    settings, the_mapping, _ = inputs(mapping, database_url=database_url, env_file=env_file)

    def confirm(outcome: Any) -> bool:
        lines = ledger_lines(outcome, asking=True)
        for line in lines[:20]:
            sys.stderr.write(line + "\n")
        if len(lines) > 20:
            sys.stderr.write(f"… and {len(lines) - 20} more\n")
        return ask("Book these rows?", timeout=settings.prompt_timeout)

    with session.connect(settings) as conn:
        outcome = book_to_ledger(
            conn,
            settings,
            list(given),
            reason,
            mapping=the_mapping,
            dry_run=dry_run,
            settle=settle_window,
            confirm=None if yes or dry_run else confirm,
        )
    if fmt in ("json", "jsonl"):
        from tokenfix.cli.envelope import envelope

        sys.stdout.write(ledger_json(outcome, envelope()) + "\n")
    elif not quiet:
        for line in ledger_lines(outcome):
            sys.stdout.write(line + "\n")
    # Attention: rows still to book (a dry run), owners left alone, drift in used (not booked).
    used_drift = any(b.drift is not None and b.drift.tokens_used for b in outcome.bookings)
    attention = (dry_run and outcome.bookings) or outcome.skipped or used_drift
    return ExitCode.ATTENTION if attention else ExitCode.OK
