"""WorkSlots: a bounded number of slots, no queue, and a timed-out job keeps its slot."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serve.work import WorkSlots


def test_slots_are_bounded_and_never_wait() -> None:
    slots = WorkSlots(2)
    first, second = slots.try_take(), slots.try_take()
    assert first is not None
    assert second is not None
    assert slots.try_take() is None
    first.release()
    first.release()  # given back once only
    assert slots.taken == 1


def test_work_runs_on_a_thread_of_its_own_and_gives_its_slot_back() -> None:
    slots = WorkSlots(1)

    async def run() -> str:
        slot = slots.try_take()
        assert slot is not None
        loop = asyncio.get_running_loop()
        return await slot.run(lambda: threading.current_thread().name, loop.time() + 5)

    assert asyncio.run(run()).startswith("serve-score-")
    assert slots.taken == 0


def test_an_exception_reaches_the_caller_and_frees_the_slot() -> None:
    slots = WorkSlots(1)

    def boom() -> None:
        raise ValueError("boom")

    async def run() -> None:
        slot = slots.try_take()
        assert slot is not None
        await slot.run(boom, asyncio.get_running_loop().time() + 5)

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(run())
    assert slots.taken == 0


def test_a_timed_out_job_keeps_its_slot_until_its_thread_ends() -> None:
    slots = WorkSlots(1)
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
