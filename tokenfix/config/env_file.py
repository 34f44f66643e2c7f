"""Reading one env file, strictly (docs/configuration.md).

python-dotenv skips a line it cannot parse (an unclosed quote) with a log message nobody reads:
`TOKENFIX_MAX_CHANGES='5` then silently leaves the brake at its default. Here such a line, a
file that is not UTF-8 and a NUL byte are bad input naming the file and the line, for every
command, before anything connects.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from tokenfix.base.errors import BadInput

_NAME = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]{0,80})\s*=")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read(path: Path) -> dict[str, str | None]:
    """The variables of env file `path` (read once: it may be a pipe), as python-dotenv reads
    them (quotes, `export`, `${VAR}` expansion); a line it cannot read is exit 2."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read the env file {path}: {exc.strerror or exc}") from None
    shown = path.absolute()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"the env file {shown}, line {_line_of(data, exc.start)}: is not UTF-8 "
            f"(byte 0x{data[exc.start]:02x})",
            hint="save the file as UTF-8",
        ) from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise BadInput(f"the env file {shown}, line {_line_of(data, nul)}: holds a NUL byte")
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            # The variable's name only: the value may be a password.
            name = _NAME.match(binding.original.string)
            what = f"{name.group(1)}=… " if name else ""
            raise BadInput(
                f"the env file {shown}, line {binding.original.line}: {what}does not parse "
                "(an unclosed quote?)",
                hint="close the quote, or write the value without quotes",
            )
    return dotenv_values(stream=io.StringIO(text))
