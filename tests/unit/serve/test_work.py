"""WorkSlots: a bounded number of slots, no queue, a timed-out job keeps its slot, and the work
waiting when the scoring thread is free is run together."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from serve.work import Slot, WorkSlots

Work = Callable[[], Any]


def call_each(works: Sequence[Work]) -> list[Any]:
    """Runs each work, its exception as its answer."""
    answers: list[Any] = []
    for work in works:
        try:
            answers.append(work())
        except Exception as exc:
            answers.append(exc)
    return answers


def take(slots: WorkSlots[Work, Any]) -> Slot[Work, Any]:
    slot = slots.try_take()
    assert slot is not None
    return slot


def test_slots_are_bounded_and_never_wait() -> None:
    slots = WorkSlots[Work, Any](2, call_each)
    first, second = slots.try_take(), slots.try_take()
    assert first is not None
    assert second is not None
    assert slots.try_take() is None
    first.release()
    first.release()  # given back once only
    assert slots.taken == 1


def test_work_runs_on_the_scoring_thread_and_gives_its_slot_back() -> None:
    slots = WorkSlots[Work, Any](1, call_each)

    async def run() -> str:
        slot = slots.try_take()
        assert slot is not None
        loop = asyncio.get_running_loop()
        return str(await slot.run(lambda: threading.current_thread().name, loop.time() + 5))

    assert asyncio.run(run()) == "serve-score"
    assert slots.taken == 0


def test_an_exception_reaches_its_caller_only_and_frees_the_slot() -> None:
    slots = WorkSlots[Work, Any](2, call_each)

    def boom() -> None:
        raise ValueError("boom")

    async def run() -> list[Any]:
        loop = asyncio.get_running_loop()
        works: list[Work] = [boom, lambda: 1]
        runs = [take(slots).run(work, loop.time() + 5) for work in works]
        return await asyncio.gather(*runs, return_exceptions=True)

    failed, answered = asyncio.run(run())
    assert isinstance(failed, ValueError)
    assert answered == 1
    assert slots.taken == 0


def test_a_failing_batch_fails_each_of_its_requests() -> None:
    def broken(works: Sequence[Work]) -> list[Any]:
        raise RuntimeError("the scorer broke")

    slots = WorkSlots[Work, Any](1, broken)

    async def run() -> None:
        slot = slots.try_take()
        assert slot is not None
        await slot.run(lambda: 1, asyncio.get_running_loop().time() + 5)

    with pytest.raises(RuntimeError, match="the scorer broke"):
        asyncio.run(run())
    assert slots.taken == 0


def test_work_waiting_while_a_batch_is_scored_is_run_together_next() -> None:
    release = threading.Event()
    batches: list[int] = []

    def run_together(works: Sequence[Work]) -> list[Any]:
        batches.append(len(works))
        return call_each(works)

    slots = WorkSlots[Work, Any](4, run_together)

    async def run() -> list[Any]:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(take(slots).run(lambda: release.wait(5), loop.time() + 10))
        while not batches:  # the first is being scored
            await asyncio.sleep(0.005)
        rest = [take(slots).run(lambda: "next", loop.time() + 10) for _ in range(3)]
        waiting = asyncio.gather(*rest)
        await asyncio.sleep(0.05)
        release.set()
        return [await first, *(await waiting)]

    assert asyncio.run(run()) == [True, "next", "next", "next"]
    assert batches == [1, 3]
    assert slots.taken == 0


def test_a_timed_out_job_keeps_its_slot_until_its_batch_ends() -> None:
    slots = WorkSlots[Work, Any](1, call_each)
    release = threading.Event()

    async def run() -> None:
        slot = slots.try_take()
        assert slot is not None
        try:
            await slot.run(lambda: release.wait(10), asyncio.get_running_loop().time() + 0.1)
        finally:
            slot.release()

    with pytest.raises(TimeoutError):
        asyncio.run(run())
    assert slots.taken == 1
    release.set()
    deadline = time.monotonic() + 5
    while slots.taken and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slots.taken == 0
