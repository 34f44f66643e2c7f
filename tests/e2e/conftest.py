"""Fixtures shared by the end-to-end test files: one Citus cluster for the whole session
(tests/support/citus.py), whichever files need it (test_citus.py, test_citus_shapes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.citus import CitusCluster, missing_reason, start_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[CitusCluster]:
    """A coordinator and two workers on loopback; skips, saying how to build Citus, where
    the extension is not installed."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    started = start_cluster()
    yield started
    started.stop()
