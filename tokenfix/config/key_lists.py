"""Lists of owner keys from files and stdin, read strictly before anything connects.

One key a line, `#` comments and blank lines ignored. Each key remembers where it came from
(`--exclude-file /etc/tokenfix/deleted.txt, line 3`), so that a key the database finds is not
of the key's type is named with its file and line. A file that is not UTF-8 or holds a NUL
byte is bad input naming the line (docs/safety.md: bad input before anything exists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tokenfix.base.errors import BadInput


def read(lines: Iterable[bytes], where_is: Callable[[int], str]) -> dict[str, str]:
    """Every key of `lines`, in order and without repeats, each with where it is
    (`where_is(line number)`)."""
    found: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        where = where_is(number)
        if b"\0" in raw:
            raise BadInput(f"{where}: holds a NUL byte, which no key can contain")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(
                f"{where}: is not UTF-8 (byte 0x{raw[exc.start]:02x})",
                hint="save the list as UTF-8",
            ) from None
        text = line.split("#", 1)[0].strip()
        if text:
            found.setdefault(text, where)
    return found
