"""`tokenfix config`: every setting in effect and where it came from."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.formats import Format, FormatOption, chosen, write
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    JsonOption,
    MappingOption,
    examples,
    load,
)

if TYPE_CHECKING:
    from tokenfix.config.settings import Origin, SettingInEffect


@app.command(
    epilog=examples(
        "tokenfix config",
        "cd / && tokenfix config --env-file /etc/tokenfix/.env   # what the cron job gets",
        "tokenfix config --json | jq .connection",
    ),
)
def config(
    env_file: EnvFileOption = None,
    database_url: DatabaseUrlOption = None,
    mapping: MappingOption = None,
    json_output: JsonOption = False,
    output_format: FormatOption = None,
    debug: DebugOption = False,
) -> None:
    """Show every setting in effect and its source: a flag, an environment variable, a line
    of an env file, or the default; then libpq's own PG* variables and where the tool will
    connect. Passwords are shown as ***. Nothing is connected to.

    Exit 0; 2 when a setting is bad (the message names it and where it came from).
    """
    enable_debug(debug)
    from tokenfix.base.errors import BadInput
    from tokenfix.db import target as where

    fmt = chosen(json_output, output_format)
    from tokenfix.config.settings import Origin, SettingInEffect, in_effect
    from tokenfix.mapping.choice import LOCAL_FILE

    settings = load(env_file=env_file, database_url=database_url, mapping=mapping)
    rows = in_effect(settings)
    if settings.mapping is None and Path(LOCAL_FILE).is_file():
        # What every command would pick up (docs/mapping.md), though no setting names it.
        found = Origin("found", "", Path(LOCAL_FILE).absolute())
        rows = [r if r.name != "mapping" else SettingInEffect(r.name, r.variable, LOCAL_FILE, found)
                for r in rows]  # fmt: skip
    try:
        target: Any = where.target(settings)
        problem = None
    except BadInput as exc:
        target, problem = None, str(exc)
    facts = {
        "settings": rows,
        "env_files": [str(path) for path in settings.env_files],
        "libpq_environment": where.libpq_environment(),
        "connection": None
        if target is None
        else {
            "target": where.describe_target(target.conninfo),
            "source": target.source,
            "search_path": target.search_path,
            "ignored_parameters": list(target.ignored),
        },
        "connection_error": problem,
    }
    if fmt is Format.json:
        _write_json(facts)
    elif fmt is not Format.table:
        _write_lines(fmt, facts)
    else:
        _render(facts)
    raise typer.Exit(ExitCode.OK)


def _source(origin: Origin) -> dict[str, str | None]:
    return {
        "kind": origin.kind,
        "name": origin.name or None,
        "path": str(origin.path) if origin.path else None,
    }


def _write_json(facts: dict[str, Any]) -> None:
    from tokenfix.cli.envelope import envelope
    from tokenfix.render import json

    shown = {
        **envelope(),
        **facts,
        "settings": {
            row.name: {"variable": row.variable, "value": row.value, "source": _source(row.origin)}
            for row in facts["settings"]
        },
    }
    sys.stdout.write(json.dumps(shown, indent=2) + "\n")


def _write_lines(fmt: Format, facts: dict[str, Any]) -> None:
    """jsonl or csv: one entry per setting, the rest of the facts as the summary."""
    from tokenfix.cli.envelope import envelope

    settings = [
        {"name": row.name, "variable": row.variable, "value": row.value,
         "source": _source(row.origin)}
        for row in facts["settings"]
    ]  # fmt: skip
    rest = {key: value for key, value in facts.items() if key != "settings"}
    write(fmt, {**envelope(), **rest}, settings, line_type="setting")


def _described(row: SettingInEffect) -> str:
    origin = row.origin
    if origin.kind == "default":
        return "default"
    if origin.kind == "environment":
        return "environment" if origin.name == row.variable else f"environment ({origin.name})"
    if origin.kind == "file":
        named = f" ({origin.name})" if origin.name != row.variable else ""
        return f"{origin.path}{named}"
    if origin.kind == "found":
        return "found in the working directory"
    return origin.name  # the flag


def _render(facts: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from tokenfix.render.console import make_consoles

    out, _ = make_consoles()
    table = Table(box=None, pad_edge=False)
    table.add_column("setting", no_wrap=True)
    # Wrapped, never cut: a path or a URL with its end missing would mislead.
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for row in facts["settings"]:
        value = Text(row.value) if row.value is not None else Text("(not set)", style="dim")
        table.add_row(Text(row.variable), value, Text(_described(row)))
    for name, value in facts["libpq_environment"].items():
        table.add_row(Text(name), Text(value), Text("environment (read by libpq)"))
    out.print(table)
    files = facts["env_files"]
    out.print(Text(f"\nenv files read: {', '.join(files) if files else 'none'}"))
    connection = facts["connection"]
    if connection is None:
        out.print(Text(f"connection: {facts['connection_error']}"))
        return
    out.print(Text(f"connection: {connection['target']}, from {connection['source']}"))
    if connection["search_path"]:
        out.print(Text(f"search_path: {connection['search_path']} (the URL's schema parameter)"))
    if connection["ignored_parameters"]:
        ignored = ", ".join(connection["ignored_parameters"])
        out.print(Text(f"ignored URL parameters: {ignored} (unknown to libpq)"))
