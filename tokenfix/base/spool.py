"""An append-only list of records kept on disk past a few MB, so memory stays flat whatever
the number of owners a run touches.

The first few thousand records stay as they are, in a list: pickling and unpickling a frozen
dataclass costs ~60 microseconds a record, a tenth of a second for the few thousand owners a
typical run lists (docs/performance.md). Past that, records are the tool's own dataclasses,
pickled: Decimal and datetime values come back as they went in (exact), and nothing but this
process ever reads the file. Records are frozen: the ones kept and the ones pickled read alike.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_KEPT_RECORDS = 4096
"""Records kept unpickled: a few kB each, some MB in all, whatever the run's size."""
_IN_MEMORY_BYTES = 4 * 1024 * 1024


class Spool(Generic[T]):
    def __init__(self) -> None:
        # Lives as long as the spool; closed by close() / the context manager.
        self._file = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES)  # noqa: SIM115
        self._kept: list[T] = []
        self.count = 0

    def append(self, record: T) -> None:
        if len(self._kept) < _KEPT_RECORDS:
            self._kept.append(record)
        else:
            pickle.dump(record, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def __iter__(self) -> Iterator[T]:
        kept = len(self._kept)
        spilled = self.count - kept
        yield from self._kept[:kept]
        if not spilled:
            return
        self._file.flush()
        self._file.seek(0)
        for _ in range(spilled):
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
        self._kept.clear()
        self._file.close()

    def __enter__(self) -> Spool[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
