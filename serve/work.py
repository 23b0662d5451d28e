"""Scoring work off the event loop, bounded in number and in time, never queued.

``WorkSlots`` holds ``SERVE_MAX_CONCURRENCY`` slots. A request takes one on arrival or is
refused at once (503 + Retry-After): there is no queue that could grow under load. Its work
runs on a worker thread, and the request waits for it until its deadline only; a request that
times out is answered 503, but its slot stays taken until its work has really finished, so
abandoned work still counts against the limit (a slow model cannot pile up threads).

One worker thread per slot at most, started when first needed and kept (a thread's first
scoring call costs milliseconds of library set-up); a taken slot always finds an idle worker,
since a worker is busy only while its job's slot is taken. The workers are daemons: a scoring
call that never returns cannot hold the process at exit.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

THREAD_PREFIX = "serve-score"


@dataclass(frozen=True, slots=True)
class _Job:
    work: Callable[[], Any]
    future: Future[Any]
    slot: Slot


class Slot:
    """One unit of SERVE_MAX_CONCURRENCY, given back exactly once."""

    def __init__(self, slots: WorkSlots) -> None:
        self._slots = slots
        self._released = False
        self._handed_to_worker = False

    def release(self) -> None:
        """Give the slot back, unless a worker has it (the worker gives it back when done)."""
        if not self._handed_to_worker:
            self.give_back()

    def give_back(self) -> None:
        self._slots.give_back(self)

    async def run(self, work: Callable[[], T], deadline: float) -> T:
        """``work()`` on a worker thread; TimeoutError at ``deadline`` (the loop's clock).

        The slot goes with the work: it is given back when ``work`` returns or raises, even if
        the caller stopped waiting long before."""
        future: Future[T] = Future()
        self._handed_to_worker = True
        self._slots.submit(_Job(work, future, self))
        async with asyncio.timeout_at(deadline):
            return await asyncio.wrap_future(future)


class WorkSlots:
    """At most ``limit`` slots taken at once (``try_take`` never waits), and their workers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._taken = 0
        self._workers = 0
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()

    def try_take(self) -> Slot | None:
        with self._lock:
            if self._taken >= self.limit:
                return None
            self._taken += 1
        return Slot(self)

    def give_back(self, slot: Slot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            self._taken -= 1

    def submit(self, job: _Job) -> None:
        with self._lock:
            start = self._workers < self._taken  # every other worker may be busy
            if start:
                self._workers += 1
                name = f"{THREAD_PREFIX}-{self._workers}"
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_result(job.work())
            except BaseException as exc:  # handed to the waiting request, which decides
                job.future.set_exception(exc)
            finally:
                job.slot.give_back()

    @property
    def taken(self) -> int:
        with self._lock:
            return self._taken

    @property
    def workers(self) -> int:
        with self._lock:
            return self._workers
