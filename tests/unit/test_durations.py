"""Tool durations and --since times (docs/commands.md): `90s`, `2m`, `24h`, `7d`, ISO times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tokenfix.base.errors import BadInput
from tokenfix.config.durations import parse_duration, parse_since


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("2m", timedelta(minutes=2)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("0", timedelta(0)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_tool_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, option="--settle") == expected


@pytest.mark.parametrize("text", ["90", "2 weeks", "1.5h", "-2m", "", "m"])
def test_a_bare_number_or_another_unit_is_bad_input_naming_the_option(text: str) -> None:
    with pytest.raises(BadInput, match="--settle"):
        parse_duration(text, option="--settle")


def test_since_a_duration_stays_a_duration_for_the_server_clock() -> None:
    assert parse_since("24h") == timedelta(hours=24)


def test_since_a_naive_iso_time_is_utc() -> None:
    assert parse_since("2026-11-24T00:00:00") == datetime(2026, 11, 24, tzinfo=UTC)


def test_since_an_aware_iso_time_keeps_its_offset() -> None:
    moment = parse_since("2026-11-24T00:00:00+02:00")
    assert isinstance(moment, datetime)
    assert moment.utcoffset() == timedelta(hours=2)


def test_since_neither_is_bad_input() -> None:
    with pytest.raises(BadInput, match="neither an ISO time"):
        parse_since("yesterday")
