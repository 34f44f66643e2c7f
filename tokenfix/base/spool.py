"""An append-only list of records kept on disk past a few MB, so memory stays flat whatever
the number of owners a run touches.

Records are the tool's own dataclasses, pickled: Decimal and datetime values come back as
they went in (exact), and nothing but this process ever reads the file.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_IN_MEMORY_BYTES = 4 * 1024 * 1024


class Spool(Generic[T]):
    def __init__(self) -> None:
        # Lives as long as the spool; closed by close() / the context manager.
        self._file = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES)  # noqa: SIM115
        self.count = 0

    def append(self, record: T) -> None:
        pickle.dump(record, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def __iter__(self) -> Iterator[T]:
        self._file.flush()
        self._file.seek(0)
        for _ in range(self.count):
            yield pickle.load(self._file)
        self._file.seek(0, 2)

    def batches(self, size: int) -> Iterator[list[T]]:
        batch: list[T] = []
        for record in self:
            batch.append(record)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
