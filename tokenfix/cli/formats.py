"""`--format table|json|jsonl|csv` on every command that prints results (docs/output.md);
`--json` stays, the same as `--format json`.

json is each command's own document; jsonl puts each entry of its list on a line of its own
(with `type`, `generated_at` and `target`), then the rest of the document as the `summary`
line; csv is the list's entries, one row each, nested fields as `outer.inner` columns. A
document without a list is one line, or one row.

There is no `-o` short form: `tokenfix init -o PATH` already means "write to this file", and one
letter meaning a file in one command and a format in another would mislead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any

import typer

from tokenfix.base.errors import BadInput


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="table (default), json (as --json), jsonl (one object a line) or csv.",
        show_default=False,
    ),
]


def chosen(json_output: bool, output_format: Format | None) -> Format:
    """The format asked for; `--json` with another `--format` is bad input."""
    if json_output and output_format not in (None, Format.json):
        raise BadInput(f"--json and --format {output_format} disagree; give one of them")
    if json_output:
        return Format.json
    return output_format or Format.table


def write(
    fmt: Format,
    head: dict[str, Any],
    items: Iterable[dict[str, Any]] | None = None,
    *,
    line_type: str,
) -> None:
    """A document as jsonl or csv: `head` (envelope included) and the entries of its list."""
    if fmt is Format.jsonl:
        from tokenfix.render import json

        json.write_document_lines(sys.stdout, head, items, line_type=line_type)
    elif fmt is Format.csv:
        from tokenfix.render import csv

        csv.write_records(sys.stdout, items if items is not None else [head])
    sys.stdout.flush()
