"""Connection strings in messages: never a password, however malformed the string is.

libpq quotes the part of a connection string it could not parse, and an unencoded `@`, `:` or
space in a password shifts where it thinks the password ends: the rest lands in the host
name or in an "invalid option" message. So redaction does not trust any parser. It takes
every character that could belong to the credentials (in a URL, from `://` to the last `@`;
in key=value form, from `password=` to the next `key=`), and scrubs each fragment of it from
whatever is about to be shown.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

URL_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://", re.S)
_KV_PASSWORD = re.compile(
    r"password\s*=\s*('(?:[^'\\]|\\.)*'?|.*?)(?=\s+[A-Za-z_]+\s*=|\s*$)", re.I | re.S
)
_QUERY_PASSWORD = re.compile(r"[?&]password=([^&#]*)", re.I)
_SEPARATORS = re.compile(r"[\s@:/?#&=%'\"\\]+")
MASK = "***"


def _url_password(dsn: str) -> str | None:
    start = URL_SCHEME.match(dsn)
    if not start:
        return None
    rest = dsn[start.end() :]
    at = rest.rfind("@")
    if at < 0:
        return None
    userinfo = rest[:at]
    colon = userinfo.find(":")
    return userinfo[colon + 1 :] if colon >= 0 else None


def _parsed_password(dsn: str) -> str | None:
    """The password as libpq itself reads it (decoded), when it can read the string."""
    from psycopg import ProgrammingError, conninfo

    try:
        password = conninfo.conninfo_to_dict(dsn).get("password")
    except ProgrammingError:
        return None
    return str(password) if password else None


def secrets(dsn: str) -> list[str]:
    """Every fragment of the password(s) in `dsn` worth scrubbing, longest first."""
    whole: list[str] = []
    url_password = _url_password(dsn)
    if url_password:
        whole.append(url_password)
    whole += [m.group(1).strip("'") for m in _KV_PASSWORD.finditer(dsn) if m.group(1)]
    whole += [m.group(1) for m in _QUERY_PASSWORD.finditer(dsn) if m.group(1)]
    parsed = _parsed_password(dsn)
    if parsed:
        whole.append(parsed)
    fragments: set[str] = set()
    for secret in whole:
        for form in (secret, unquote(secret)):
            fragments.add(form)
            fragments.update(_SEPARATORS.split(form))
            # Where libpq cuts a password it quotes what is left on either side of the cut.
            for found in _SEPARATORS.finditer(form):
                fragments.update(
                    (form[: found.start()], form[found.start() :], form[found.end() :])
                )
    # Every piece, however short: `b2` of `a1@b2:c3` is what libpq names as the host.
    return sorted((f for f in fragments if f.strip()), key=len, reverse=True)


def _token(fragment: str) -> re.Pattern[str]:
    # Whole tokens only: a piece is hidden where it stands on its own, never inside a longer
    # word (the password `p` must not turn the user `app` into `a***`).
    return re.compile(r"(?<![^\W_])" + re.escape(fragment) + r"(?![^\W_])")


def scrub(message: str, dsn: str | None) -> str:
    """`message` with every fragment of `dsn`'s password replaced by ***."""
    if not dsn:
        return message
    for fragment in secrets(dsn):
        message = _token(fragment).sub(MASK, message)
    return message


def unescaped_at(url: str) -> bool:
    """Whether a URL holds an `@` besides the one before the host: one in the password that
    was not percent-encoded. Nobody, libpq included, can tell where such a password ends."""
    scheme = URL_SCHEME.match(url)
    return bool(scheme) and url.count("@", scheme.end() if scheme else 0) > 1


def redact(dsn: str) -> str:
    """The connection string itself, fit to show: its password (whatever its shape) is ***."""

    def masked(found: re.Match[str]) -> str:
        return found.group(0)[: found.start(1) - found.start(0)] + MASK

    start = URL_SCHEME.match(dsn)
    if not start:
        return scrub(_KV_PASSWORD.sub(masked, dsn), dsn)
    shown = dsn
    rest = dsn[start.end() :]
    at = rest.rfind("@")
    colon = rest.find(":", 0, at) if at >= 0 else -1
    if colon >= 0:
        shown = dsn[: start.end()] + rest[: colon + 1] + MASK + rest[at:]
    return scrub(_QUERY_PASSWORD.sub(masked, shown), dsn)
