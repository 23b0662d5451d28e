"""Scoring work off the event loop, bounded in number and in time, never queued beyond the bound,
and scored together: the requests waiting when the scorer is free make one batch.

``WorkSlots`` holds ``SERVE_MAX_CONCURRENCY`` slots. A request takes one on arrival or is
refused at once (503 + Retry-After): there is no queue that could grow under load. Its work
(a body) is handed to the one scoring thread, and the request waits for its answer until its
deadline only; a request that times out is answered 503, but its slot stays taken until its
work has really finished, so abandoned work still counts against the limit.

The scoring thread takes every request waiting and runs them through ``run_together`` as one
call, the way the consumer scores a micro-batch: the runtime's cost per call (cleaning and
features column by column, the model's set-up) is paid once for all of them instead of once per
request, and threads never compete for the interpreter lock over small calls. A request that
arrives while a batch is scored waits for that batch (at most one in progress), then goes with
the next. The thread is a daemon: a scoring call that never returns cannot hold the process at
exit.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

THREAD_NAME = "serve-score"

RunTogether = Callable[[Sequence[In]], Sequence[Out | BaseException]]
"""Answers (or the exception of each) for the inputs of the requests taken together, in order."""


@dataclass(frozen=True, slots=True)
class _Job(Generic[In, Out]):
    work: In
    future: Future[Out]
    slot: Slot[In, Out]


class Slot(Generic[In, Out]):
    """One unit of SERVE_MAX_CONCURRENCY, given back exactly once."""

    def __init__(self, slots: WorkSlots[In, Out]) -> None:
        self._slots = slots
        self._released = False
        self._handed_to_worker = False

    def release(self) -> None:
        """Give the slot back, unless the scoring thread has it (it gives it back when done)."""
        if not self._handed_to_worker:
            self.give_back()

    def give_back(self) -> None:
        self._slots.give_back(self)

    async def run(self, work: In, deadline: float) -> Out:
        """The answer to ``work`` from the scoring thread; TimeoutError at ``deadline`` (the
        loop's clock).

        The slot goes with the work: it is given back when its batch has been scored, even if
        the caller stopped waiting long before."""
        future: Future[Out] = Future()
        self._handed_to_worker = True
        self._slots.submit(_Job(work, future, self))
        async with asyncio.timeout_at(deadline):
            return await asyncio.wrap_future(future)


class WorkSlots(Generic[In, Out]):
    """At most ``limit`` slots taken at once (``try_take`` never waits), and the thread that
    runs the waiting work together."""

    def __init__(self, limit: int, run_together: RunTogether[In, Out]) -> None:
        self.limit = limit
        self._run_together = run_together
        self._lock = threading.Lock()
        self._taken = 0
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Job[In, Out]] = queue.SimpleQueue()

    def try_take(self) -> Slot[In, Out] | None:
        with self._lock:
            if self._taken >= self.limit:
                return None
            self._taken += 1
        return Slot(self)

    def give_back(self, slot: Slot[In, Out]) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            self._taken -= 1

    def submit(self, job: _Job[In, Out]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _waiting(self) -> list[_Job[In, Out]]:
        """The next job (waits for it) and every other job already waiting, still wanted."""
        jobs = [self._jobs.get()]
        while True:
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        wanted = []
        for job in jobs:
            if job.future.set_running_or_notify_cancel():
                wanted.append(job)
            else:
                job.slot.give_back()
        return wanted

    def _work(self) -> None:
        while True:
            jobs = self._waiting()
            try:
                answers = self._run_together([job.work for job in jobs])
                if len(answers) != len(jobs):
                    raise RuntimeError(f"{len(answers)} answers for {len(jobs)} requests")
            except BaseException as exc:  # handed to every waiting request, which decides
                answers = [exc] * len(jobs)
            for job, answer in zip(jobs, answers, strict=True):
                job.slot.give_back()  # the work is done: free before its request resumes
                if isinstance(answer, BaseException):
                    job.future.set_exception(answer)
                else:
                    job.future.set_result(answer)

    @property
    def taken(self) -> int:
        with self._lock:
            return self._taken

    @property
    def running(self) -> bool:
        """Whether the scoring thread has started (it starts with the first request)."""
        with self._lock:
            return self._thread is not None
