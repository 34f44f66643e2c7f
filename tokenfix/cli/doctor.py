"""`tokenfix doctor`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli.app import app, enable_debug, error_line
from tokenfix.cli.formats import Format, FormatOption, chosen, write
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    JsonOption,
    MappingOption,
    QuietOption,
    examples,
    inputs,
)

EXIT_FOR = {"ok": ExitCode.OK, "warn": ExitCode.ATTENTION, "fail": ExitCode.ENVIRONMENT}


@app.command(
    epilog=examples(
        "tokenfix doctor",
        "tokenfix doctor --no-probe --json | jq '.checks[] | select(.status != \"ok\")'",
    ),
)
def doctor(
    probe: Annotated[
        bool,
        typer.Option(
            "--probe/--no-probe",
            help="Prove the verdicts by acting as anon and authenticated (raise a balance, mint "
            "a ledger row, set a price), always rolled back; --no-probe judges from the "
            "catalogs only.",
        ),
    ] = True,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    json_output: JsonOption = False,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Check that this database is set up so that tokenfix, and the app, can work.

    Connection, tables and columns, privileges, row-level security, and the trust boundary:
    every way anon, authenticated or PUBLIC could raise a balance or write the ledger and the
    prices (grants, policies, views, SECURITY DEFINER functions, proven by rolled-back
    probes), indexes, ambiguous overrides, invalid rows, missing profiles. Exit 0 when all
    is ok, 1 with warnings only, 3 when a check failed.
    """
    enable_debug(debug)
    from tokenfix.health.run import run_doctor

    fmt = chosen(json_output, output_format)
    json_output = fmt is Format.json

    settings, the_mapping, _ = inputs(mapping, database_url=database_url, env_file=env_file)
    report = run_doctor(settings, probe=probe, mapping=the_mapping)
    if json_output:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        sys.stdout.write(json.dumps(json.report(report, envelope())) + "\n")
    elif fmt is not Format.table:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        document = json.report(report, envelope())
        checks = document.pop("checks")
        write(fmt, document, checks, line_type="check")
    elif not quiet:
        from tokenfix.render.console import make_consoles
        from tokenfix.render.doctor import render_report

        render_report(make_consoles()[0], report)
    connection = report.checks[0]
    if connection.name == "connection" and connection.status == "fail" and len(report.checks) == 1:
        error_line(f"{connection.message} ({connection.fix})")
    raise typer.Exit(EXIT_FOR[report.status])
