"""An append-only list of small records kept on disk past a few MB, so memory stays flat
whatever the number of users a run touches."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

_IN_MEMORY_BYTES = 4 * 1024 * 1024


class Spool:
    def __init__(self) -> None:
        # Lives as long as the spool; closed by close() / the context manager.
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=_IN_MEMORY_BYTES, mode="w+", encoding="utf-8"
        )
        self.count = 0

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.count += 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield json.loads(line)
        self._file.seek(0, 2)

    def batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        for record in self:
            batch.append(record)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
