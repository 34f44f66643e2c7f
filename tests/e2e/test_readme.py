"""The README stays true: every command it shows runs, and its captured outputs match the tool.

These use a throwaway server of their own: the captured outputs come from a cluster without
Supabase's roles (the session server has them, for the doctor tests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import readme
from tokenfix.demo.pgserver import Server, start_server


@pytest.fixture(scope="module")
def own_server() -> Iterator[Server]:
    server = start_server()
    yield server
    server.stop()


def test_every_command_in_the_readme_runs(own_server: Server) -> None:
    assert len(readme.commands(readme.README.read_text())) >= 15
    assert readme.run_commands(own_server.url) == []


def test_the_readme_outputs_match_what_the_tool_prints(own_server: Server) -> None:
    assert len(list(readme.outputs(readme.README.read_text()))) >= 5
    assert readme.check(own_server.url) == []


def test_the_quick_start_is_the_two_make_commands() -> None:
    text = readme.README.read_text()
    quick_start = text.split("## Quick start", 1)[1].split("##", 1)[0]
    block = readme.FENCE.search(quick_start)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group("body").splitlines()]
    assert lines == ["make demo", "make test"]


def test_the_files_the_readme_quotes_are_quoted_as_they_are() -> None:
    text = readme.README.read_text()
    assert len(list(readme.QUOTED.finditer(text))) >= 2
    assert readme.stale_quotes(text) == []
