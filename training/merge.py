"""A k-way merge by timestamp of records that arrive in chunks, one sequence per source.

``python -m training collect`` reads every partition of two topics at once; the broker hands
out their records in whatever order its fetches complete. The join decides in record time, so
the records are fed to it in timestamp order across the partitions: a record is released only
once every source that is not finished has a record waiting, so the smallest of their heads is
known. The result is the merge of the sources' whole sequences (ties: the source given first),
whatever the order the chunks arrived in; a re-run over the same records feeds the same
sequence. Within a source the order is kept as it is (Kafka's offset order), even where its
timestamps go back.

Memory: what is buffered per source; the caller stops fetching a source whose ``buffered``
is large (``Consumer.pause``) and resumes it when it has drained.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Merged", "TimeMerge"]

T = TypeVar("T")


class Merged(NamedTuple, Generic[T]):
    time_ms: int
    source: int
    item: T


class TimeMerge(Generic[T]):
    """Sources are numbered ``0 .. n-1``; the number breaks ties between equal timestamps."""

    def __init__(self, sources: int) -> None:
        self._buffers: list[deque[tuple[int, T]]] = [deque() for _ in range(sources)]
        self._finished = [False] * sources
        self._heads: list[tuple[int, int]] = []
        """(time, source) of the head of every source with a record buffered."""
        self._waiting = sources
        """Sources neither finished nor with a record buffered: nothing is released until 0."""

    def buffered(self, source: int) -> int:
        return len(self._buffers[source])

    def finished(self, source: int) -> bool:
        return self._finished[source]

    def push(self, source: int, time_ms: int, item: T) -> None:
        """The source's next record, in its own order."""
        if self._finished[source]:
            raise ValueError(f"source {source} is finished")
        buffer = self._buffers[source]
        buffer.append((time_ms, item))
        if len(buffer) == 1:
            heapq.heappush(self._heads, (time_ms, source))
            self._waiting -= 1

    def finish(self, source: int) -> None:
        """The source has no record after those pushed."""
        if self._finished[source]:
            return
        self._finished[source] = True
        if not self._buffers[source]:
            self._waiting -= 1

    @property
    def done(self) -> bool:
        """Every source finished and every record released."""
        return all(self._finished) and not self._heads

    def pop(self) -> Merged[T] | None:
        """The next record in the merge, or None until every unfinished source has one."""
        if self._waiting or not self._heads:
            return None
        time_ms, source = heapq.heappop(self._heads)
        buffer = self._buffers[source]
        _, item = buffer.popleft()
        if buffer:
            heapq.heappush(self._heads, (buffer[0][0], source))
        elif not self._finished[source]:
            self._waiting += 1
        return Merged(time_ms, source, item)
