"""Shared machinery of the fault suite: the scenario (start, offer, kill, account), accounting by
session_id, the ledger, topic readers.

Every test accounts the same way: each input message has an id (the session_id of a valid event,
the message key of a poison one); the output topic accounts for an id by the `session_id` of a
scored record, the dead-letter topic by the record's key. `lost` counts ids seen nowhere,
`duplicates` counts extra appearances.
"""

from __future__ import annotations

import collections
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.replay import KeyValue, Record, event_messages, produce_messages
from tests.integration.broker import wait_for_topic
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.process import ConsumerProcess

__all__ = [
    "FAST_FAILOVER",
    "Accounting",
    "Ledger",
    "Scenario",
    "ScenarioFactory",
    "Stream",
    "TopicReader",
    "Topics",
    "account",
    "committed_offsets",
    "create_topics",
    "end_offsets",
    "failed",
    "metric",
    "readiness",
    "scored",
    "wait_until",
]

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
RESULTS = REPO / "build" / "reliability" / "results.jsonl"
OFFSET_INVALID = -1001  # librdkafka's "no committed offset"
# For tests that SIGKILL members: a killed member holds its partitions until its session times
# out (45 s by default); the broker's minimum, 6 s, lets the restarted process take over quickly.
FAST_FAILOVER = {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000"}


# --- accounting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accounting:
    """Where every input id ended up."""

    events: int
    lost: list[str]
    duplicates: int
    scored: int
    dead_lettered: int
    unexpected: list[str]

    def assert_nothing_lost(self) -> None:
        assert not self.lost, f"{len(self.lost)} of {self.events} inputs lost: {self.lost[:10]}"
        assert not self.unexpected, f"records for ids never sent: {self.unexpected[:10]}"


def output_id(record: Record) -> str:
    return str(record.json()["session_id"])


def dead_letter_id(record: Record) -> str:
    return (record.key or b"").decode("utf-8", "replace")


def account(
    inputs: Iterable[str], outputs: Iterable[Record], dead_letters: Iterable[Record] = ()
) -> Accounting:
    """Each input must appear in the output (by session_id) or the dead letters (by key)."""
    expected = list(inputs)
    scored = collections.Counter(output_id(r) for r in outputs)
    dead = collections.Counter(dead_letter_id(r) for r in dead_letters)
    seen = scored + dead
    wanted = set(expected)
    return Accounting(
        events=len(expected),
        lost=sorted(wanted - set(seen)),
        duplicates=sum(count - 1 for count in seen.values() if count > 1),
        scored=sum(scored.values()),
        dead_lettered=sum(dead.values()),
        unexpected=sorted(set(seen) - wanted),
    )


# --- the ledger: build/reliability/results.jsonl -----------------------------------------------


@dataclass
class Ledger:
    """One line per test run: fault, runs, events, lost, duplicates (docs/reliability.md)."""

    session: str
    path: Path = RESULTS
    lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_session(cls) -> Ledger:
        return cls(session=datetime.now(UTC).isoformat(timespec="seconds"))

    def record(
        self,
        fault: str,
        *,
        runs: int,
        accounting: Accounting,
        seconds: float,
        **details: object,
    ) -> None:
        line: dict[str, Any] = {
            "session": self.session,
            "fault": fault,
            "runs": runs,
            "events": accounting.events,
            "lost": len(accounting.lost),
            "duplicates": accounting.duplicates,
            "scored": accounting.scored,
            "dead_lettered": accounting.dead_lettered,
            "seconds": round(seconds, 1),
            **details,
        }
        self.lines.append(line)
        print(f"\n[reliability] {json.dumps(line)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


# --- topics and offsets ----------------------------------------------------------------------


def create_topics(
    admin: AdminClient, partitions: Mapping[str, int], config: Mapping[str, str] | None = None
) -> None:
    new = [NewTopic(name, n, config=dict(config or {})) for name, n in partitions.items()]
    for future in admin.create_topics(new, operation_timeout=30, request_timeout=30).values():
        future.result(30)
    for name, n in partitions.items():
        wait_for_topic(admin, name, n)


def _client(bootstrap: str, **extra: object) -> Consumer:
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "fault-suite-probe", **extra},
        logger=logger,
    )


_COORDINATOR_MOVING = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offset per partition (OFFSET_INVALID where none)."""
    consumer = _client(bootstrap, **{"group.id": group})
    asked = [TopicPartition(topic, p) for p in range(partitions)]
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                return [tp.offset for tp in consumer.committed(asked, timeout=20)]
            except KafkaException as exc:
                # NOT_COORDINATOR and its kin while a fresh broker elects the group's coordinator
                # (librdkafka does not always flag them retriable here).
                error = exc.args[0]
                moving = error.code() in _COORDINATOR_MOVING or error.retriable()
                if not moving or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    consumer = _client(bootstrap)
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()


def wait_until(
    condition: Callable[[], bool], what: str, timeout_s: float = 120, every_s: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# --- reading a topic incrementally ---------------------------------------------------------


class TopicReader:
    """Reads a topic from offset 0 and keeps what it read; call `poll_until` again for more."""

    def __init__(self, bootstrap: str, topic: str, *, read_committed: bool = True) -> None:
        self.topic = topic
        self.records: list[Record] = []
        self._consumer = _client(
            bootstrap,
            **{
                "group.id": f"fault-reader-{time.monotonic_ns()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            },
        )
        partitions = self._consumer.list_topics(topic, timeout=20).topics[topic].partitions
        self.partitions = sorted(partitions)
        self._consumer.assign([TopicPartition(topic, p, 0) for p in self.partitions])

    def _poll(self, wait_s: float) -> int:
        got = 0
        for message in self._consumer.consume(2000, wait_s):
            if message.error():
                continue
            self.records.append(Record.of(message))
            got += 1
        return got

    def poll_until(
        self, done: Callable[[list[Record]], bool], what: str, timeout_s: float = 180
    ) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.topic}: timed out after {timeout_s}s waiting for {what} "
                    f"({len(self.records)} records read)"
                )
            self._poll(0.2)
        return self.records

    def has_ids(
        self, ids: Iterable[str], by: Callable[[Record], str] = output_id
    ) -> Callable[[list[Record]], bool]:
        wanted = set(ids)
        seen: set[str] = set()
        cursor = [0]

        def done(records: list[Record]) -> bool:
            for record in records[cursor[0] :]:
                seen.add(by(record))
            cursor[0] = len(records)
            return wanted <= seen

        return done

    def read_to_end(self, timeout_s: float = 60) -> list[Record]:
        """Read until the position of every partition reached its current end offset."""
        deadline = time.monotonic() + timeout_s
        ends = {
            p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=20)[1]
            for p in self.partitions
        }
        while True:
            self._poll(0.2)
            positions = self._consumer.position([TopicPartition(self.topic, p) for p in ends])
            # Assigned from offset 0: no position yet (OFFSET_INVALID) means 0 was not passed.
            behind = [tp for tp in positions if max(tp.offset, 0) < ends[tp.partition]]
            if not behind:
                return self.records
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.topic}: still behind {behind} after {timeout_s}s")

    def settle(self, idle_s: float = 2.0) -> list[Record]:
        """Keep reading until nothing arrived for `idle_s` (late duplicates land here)."""
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            if self._poll(0.2):
                last = time.monotonic()
        return self.records

    def close(self) -> None:
        self._consumer.close()


class Stream(threading.Thread):
    """Produces messages in the background, `chunk` at a time with a pause between chunks.

    Large producer batches keep 50,000 events to seconds; the pause spreads them out so that
    faults land while input is still arriving.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        messages: Sequence[KeyValue],
        *,
        chunk: int = 2000,
        pause_s: float = 0.2,
        hold_after: int | None = None,
    ) -> None:
        super().__init__(name=f"stream-{topic}", daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.messages = messages
        self.chunk = chunk
        self.pause_s = pause_s
        self.sent = 0
        self.error: BaseException | None = None
        # With hold_after, the stream stops after that many messages until release() is called.
        self.hold_after = hold_after
        self.holding = threading.Event()
        self._released = threading.Event()

    @classmethod
    def of_events(
        cls, bootstrap: str, topic: str, events: Sequence[dict[str, object]], **kwargs: Any
    ) -> Stream:
        return cls(bootstrap, topic, list(event_messages(events)), **kwargs)

    def run(self) -> None:
        try:
            producer = Producer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "acks": "all",
                    "linger.ms": 20,
                    "batch.size": 1_000_000,
                    "compression.type": "lz4",
                },
                logger=logger,
            )
            for start in range(0, len(self.messages), self.chunk):
                for key, value in self.messages[start : start + self.chunk]:
                    while True:
                        try:
                            producer.produce(self.topic, key=key, value=value)
                            break
                        except BufferError:
                            producer.poll(0.05)
                producer.poll(0)
                self.sent = min(len(self.messages), start + self.chunk)
                time.sleep(self.pause_s)
                if self.hold_after is not None and self.sent >= self.hold_after:
                    self.hold_after = None
                    producer.flush(60)
                    self.holding.set()
                    self._released.wait(600)
            remaining = producer.flush(300)
            if remaining:
                raise RuntimeError(f"{remaining} messages to {self.topic} never acknowledged")
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def release(self) -> None:
        self._released.set()

    def finish(self, timeout_s: float = 360) -> None:
        self.release()
        self.join(timeout_s)
        assert not self.is_alive(), f"the stream to {self.topic} did not finish in {timeout_s}s"
        if self.error is not None:
            raise AssertionError(f"the stream to {self.topic} failed: {self.error}")


def metric(process: ConsumerProcess, name: str, labels: str = "") -> float:
    """One sample from a process's /metrics; 0 while its HTTP server is not up (yet)."""
    try:
        return process.metric(name, labels)
    except OSError:
        return 0.0


def scored(process: ConsumerProcess) -> float:
    """`scorer_messages_total{outcome="scored"}` of a running process."""
    return metric(process, "scorer_messages_total", 'outcome="scored"')


def failed(process: ConsumerProcess) -> float:
    """`scorer_messages_total{outcome="failed"}`: messages whose batch is being retried."""
    return metric(process, "scorer_messages_total", 'outcome="failed"')


def readiness(process: ConsumerProcess) -> dict[str, object]:
    """/readyz's JSON; empty while the HTTP server is not up (yet)."""
    return process.readiness() or {}


# --- a scenario: start, offer, kill, account ----------------------------------------------------


@dataclass
class Scenario:
    """One fault test's run, in the order the tests do it: consumers started in one group
    (`start`, `launch`; each is a run in the ledger), the events offered to the input topic
    (`offer`: all at once, or streamed in the background), faults in between (`kill`, or the
    test's own), then `account`: read the output until every event is there, account for each,
    record the ledger line. `env` applies to every consumer started (e.g. another bootstrap)."""

    fault: str
    bootstrap: str
    topics: Topics
    events: Sequence[dict[str, object]]
    group: str
    start_consumer: ConsumerFactory
    ledger: Ledger
    env: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    processes: list[ConsumerProcess] = field(default_factory=list)
    stream: Stream | None = None
    outputs: list[Record] = field(default_factory=list)

    @property
    def wanted(self) -> list[str]:
        """The session_id of every event, in the order offered."""
        return [str(e["session_id"]) for e in self.events]

    def launch(self, **env: Any) -> ConsumerProcess:
        """Start a consumer in the scenario's group (`env` on top of the scenario's; `module`
        and `args`, another entry point, pass through to the consumer factory)."""
        process = self.start_consumer(self.topics, group=self.group, **{**self.env, **env})
        self.processes.append(process)
        return process

    def start(self, **env: Any) -> ConsumerProcess:
        """`launch`, then wait until the consumer is ready (gates passed, partitions held)."""
        process = self.launch(**env)
        process.wait_ready(120)
        return process

    def offer(self, *, chunk: int | None = None, **stream: Any) -> None:
        """Produce the events: all at once, or with `chunk` in the background (`Stream`)."""
        messages = list(event_messages(self.events))
        if chunk is None:
            produce_messages(self.bootstrap, self.topics.input, messages)
            return
        self.stream = Stream(self.bootstrap, self.topics.input, messages, chunk=chunk, **stream)
        self.stream.start()

    def kill(self, process: ConsumerProcess) -> None:
        """SIGKILL: no commit, no goodbye."""
        process.kill()
        assert process.exit_code() == -signal.SIGKILL, process.log_tail()

    def account(
        self,
        timeout_s: float = 240,
        settle_s: float = 2.0,
        *,
        record: bool = True,
        **details: object,
    ) -> Accounting:
        """Finish the stream, read the output (`read_committed`) until every event is there,
        plus `settle_s` for late duplicates, into `outputs`; account for each event and write the
        ledger line with `details` (`record=False`: the test calls `record` itself, later)."""
        if self.stream is not None:
            self.stream.finish()
        reader = TopicReader(self.bootstrap, self.topics.output)
        try:
            reader.poll_until(reader.has_ids(self.wanted), "every session_id", timeout_s)
            self.outputs = list(reader.settle(settle_s))
        finally:
            reader.close()
        result = account(self.wanted, self.outputs)
        if record:
            self.record(result, **details)
        return result

    def record(self, result: Accounting, **details: object) -> None:
        """The ledger line: the fault, the consumers started, the accounting, the seconds."""
        self.ledger.record(
            self.fault,
            runs=len(self.processes),
            accounting=result,
            seconds=time.monotonic() - self.started,
            **details,
        )


ScenarioFactory = Callable[..., Scenario]
"""The `scenario` fixture: `scenario(fault, topics, events, bootstrap=None, **env)`."""
