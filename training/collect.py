"""``python -m training collect``: labelled sessions from the stream, as a dataset training reads.

Reads the input topic (session events) and the outcome topic over a time range and writes each
valid session event, labelled with its outcome, to Parquet parts (``training.dataset``) that
``python -m training --data <out>`` reads as they are. The only module of ``training`` that
speaks Kafka; the rest of a collect is transport-free:

- **By timestamp, not from the beginning.** Per partition, ``offsets_for_times`` gives the first
  offset at or after the range's start and the first one past its end; a partition is read
  between the two (records are never read before the start, and reading stops at the first
  record past the end). Events: ``from .. to``. Outcomes: ``from - OUTCOME_WINDOW .. to +
  OUTCOME_WINDOW``, as the join rule lets an outcome come up to a window before or after its
  session's first event. Nothing is committed and the group is never joined (``assign``).
- **In record time.** Records are fed to the join (``training.label``, the quality monitor's rule
  from ``contract.join``) in timestamp order across every partition of both topics (a k-way
  merge, ``training.merge``), and the join's watermark is the time of the record about to be fed
  minus 1 ms: every record before it has been fed. So the rows do not depend on the order the
  broker hands records out, and a re-run over the same range writes the same parts.
- **Only closed windows.** At the end, a partition read up to its end bound is complete; one read
  to the end of its log is complete up to the newest record read, or up to ``GRACE`` before the
  time the collect started. Sessions whose window has not closed by then are counted as
  ``window_open`` and not written: collect again later for them.
- **Bounded memory.** Each partition buffers at most ``buffer_records`` records before it is
  paused (``Consumer.pause``) until the merge has drained it; the join holds a session from its
  first event to its decision (at most ``OUTCOME_WINDOW``, capped by ``max_sessions``); rows are
  written every ``part_rows``. Memory grows with the sessions of one window, never with the range
  (docs/training.md, "Memory").

Progress: a bar on a terminal (tqdm), else a log line every ``PROGRESS_LOG_S``; the report at
the end (rows read, joined, positives, skipped by reason) is a log line and ``_collect.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from tqdm import tqdm

from contract.brokers import (
    READER_PROPERTIES,
    BrokerConnection,
    BrokerSettingError,
    connection_from_environment,
    fatal_client_error,
)
from contract.decoding import DEFAULT_MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES
from contract.durations import duration_seconds
from contract.framing import AUTO_FRAMING, Framing, InputFormat
from contract.join import MissingOutcome
from contract.outcome import OUTCOME_TOPIC
from contract.storage import S3Options, StorageError, Store
from training.arguments import positive_int
from training.dataset import PART_ROWS, CollectSummary, DatasetError, PartWriter
from training.label import Labeller, Row, Tally
from training.merge import TimeMerge
from training.timerange import TimeRange, iso_ms, resolve_range

logger = logging.getLogger(__name__)

__all__ = [
    "ENVIRONMENT",
    "RESERVED_PROPERTIES",
    "CollectConfig",
    "CollectError",
    "collect",
    "consumer_config",
    "main",
]

ENVIRONMENT: Final = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "INPUT_TOPIC",
    "OUTCOME_TOPIC",
    "OUTCOME_WINDOW",
    "MISSING_OUTCOME",
    "INPUT_FORMAT",
    "SCHEMA_REGISTRY_SCHEMA_IDS",
    "INPUT_MAX_MESSAGE_BYTES",
)
"""The variables a collect reads by name, with the consumer's and the monitor's meanings (each
one's command-line option wins); besides them ``KAFKA_<PROPERTY>``, ``<NAME>_FILE`` for the
``KAFKA_*`` ones, and the object store's ``AWS_*``."""
RESERVED_PROPERTIES: Final = READER_PROPERTIES
"""The librdkafka properties ``consumer_config`` sets itself."""
GROUP_ID: Final = "shopper-intent-collect"
"""Required by librdkafka; never joined (partitions are assigned) and nothing is committed."""
DEFAULT_WINDOW_S: Final = 86_400.0
DEFAULT_MAX_SESSIONS: Final = 2_000_000
DEFAULT_MAX_PENDING_OUTCOMES: Final = 500_000
BUFFER_RECORDS: Final = 2_000
GRACE_S: Final = 5.0
"""A partition read to the end of its log is trusted up to this long before the start."""
PROGRESS_LOG_S: Final = 10.0
STALL_S: Final = 120.0
"""No record for this long while partitions are unfinished: the collect stops (exit 1)."""
CONSUME_BATCH: Final = 1_000
CONSUME_TIMEOUT_S: Final = 0.5
METADATA_TIMEOUT_S: Final = 30.0
_FOREVER: Final = 2**62
"""A watermark past every record time: the partition has nothing more to give."""

Role = Literal["event", "outcome"]


class CollectError(Exception):
    """The collect cannot go on: a topic missing, the brokers out of reach, a fatal error."""


@dataclass(frozen=True)
class CollectConfig:
    out: str
    """A new directory or an empty ``s3://bucket/prefix``."""
    time_range: TimeRange
    input_topic: str = "sessions"
    outcome_topic: str = OUTCOME_TOPIC
    window_s: float = DEFAULT_WINDOW_S
    missing: MissingOutcome = "unknown"
    framing: Framing = AUTO_FRAMING
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """``INPUT_MAX_MESSAGE_BYTES`` as the consumer has it: larger events are counted, not read."""
    part_rows: int = PART_ROWS
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_pending_outcomes: int = DEFAULT_MAX_PENDING_OUTCOMES
    buffer_records: int = BUFFER_RECORDS
    grace_s: float = GRACE_S

    @property
    def window_ms(self) -> int:
        return round(self.window_s * 1000)


@dataclass
class _Source:
    """One partition of one topic, and how far it is to be read."""

    index: int
    role: Role
    topic: str
    partition: int
    lower_ms: int
    """Records older than this are out of range (timestamps that go back in the log)."""
    upper_ms: int
    start: int
    end: int
    """The offset after the last one to read (exclusive)."""
    bounded: bool
    """True: ``end`` is the first record past ``upper_ms``; False: the end of the log."""
    next_offset: int = 0
    last_ms: int = -1
    paused: bool = False
    read: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def complete_through(self, started_ms: int, grace_ms: int) -> int:
        """Every record of this partition up to the returned time has been read."""
        if self.bounded:
            return _FOREVER
        return max(self.last_ms, started_ms - grace_ms)


@dataclass
class _Clients:
    """The error callback's findings."""

    fatal_error: str | None = None

    def on_error(self, error: KafkaError) -> None:
        self.fatal_error = self.fatal_error or fatal_client_error(error)
        if self.fatal_error is None:
            logger.warning("kafka error: %s", error.str())


def consumer_config(
    connection: BrokerConnection, on_error: Callable[[KafkaError], None]
) -> dict[str, Any]:
    return {
        # Prefetch at most 16 MiB in all (librdkafka's default: 64 MiB); KAFKA_* may change it.
        "queued.max.messages.kbytes": 16_384,
        **connection.connection_config(),
        "group.id": GROUP_ID,
        # Positions come from offsets_for_times; nothing is ever committed.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # The end of a partition's log ends its reading.
        "enable.partition.eof": True,
        # Outcomes of aborted transactions never happened.
        "isolation.level": "read_committed",
        "error_cb": on_error,
    }


def _plan(consumer: Consumer, config: CollectConfig) -> list[_Source]:
    """Every partition of both topics, with the offsets to read between."""
    window = config.window_ms
    span = config.time_range
    bounds: list[tuple[Role, str, int, int]] = [
        ("event", config.input_topic, span.from_ms, span.to_ms),
        ("outcome", config.outcome_topic, span.from_ms - window, span.to_ms + window),
    ]
    metadata = consumer.list_topics(timeout=METADATA_TIMEOUT_S)
    sources: list[_Source] = []
    for role, topic, lower, upper in bounds:
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise CollectError(f"topic {topic} does not exist (or cannot be described)")
        numbers = sorted(described.partitions)
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, n, lower) for n in numbers], timeout=METADATA_TIMEOUT_S
        )
        ends = consumer.offsets_for_times(
            [TopicPartition(topic, n, upper + 1) for n in numbers], timeout=METADATA_TIMEOUT_S
        )
        for number, start, end in zip(numbers, starts, ends, strict=True):
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, number), timeout=METADATA_TIMEOUT_S
            )
            bounded = end.offset >= 0
            last = end.offset if bounded else high
            first = start.offset if start.offset >= 0 else last
            sources.append(
                _Source(
                    index=len(sources),
                    role=role,
                    topic=topic,
                    partition=number,
                    lower_ms=lower,
                    upper_ms=upper,
                    start=first,
                    end=last,
                    bounded=bounded,
                    next_offset=first,
                )
            )
    return sources


class _Progress:
    """A bar on a terminal; a log line every PROGRESS_LOG_S otherwise."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._bar = tqdm(total=total, desc="collect", unit="record", disable=None, file=sys.stderr)
        self._logged = time.monotonic()

    def update(self, records: int, tally: Tally, held: int) -> None:
        self.done += records
        if not self._bar.disable:
            self._bar.update(records)
            self._bar.set_postfix(joined=tally.rows, held=held, refresh=False)
            return
        now = time.monotonic()
        if now - self._logged >= PROGRESS_LOG_S:
            self._logged = now
            logger.info(
                "collect progress records=%d/%d joined=%d positives=%d held_sessions=%d",
                self.done,
                self.total,
                tally.rows,
                tally.positives,
                held,
            )

    def close(self) -> None:
        self._bar.close()


class _Reader:
    """The loop: fetch, route each record to its partition's buffer, feed the merge's output
    to the join, pause and resume partitions by their buffers."""

    def __init__(
        self,
        consumer: Consumer,
        clients: _Clients,
        config: CollectConfig,
        sources: list[_Source],
        labeller: Labeller,
        emit: Callable[[list[Row]], None],
    ) -> None:
        self.consumer = consumer
        self.clients = clients
        self.config = config
        self.sources = sources
        self.by_key = {(s.topic, s.partition): s for s in sources}
        self.labeller = labeller
        self.emit = emit
        self.merge: TimeMerge[Message] = TimeMerge(len(sources))
        self.watermark = -1
        self.progress = _Progress(sum(s.end - s.start for s in sources))

    def run(self) -> None:
        for source in self.sources:
            if source.start >= source.end:
                self.merge.finish(source.index)
        wanted = [s for s in self.sources if not self.merge.finished(s.index)]
        self.consumer.assign([TopicPartition(s.topic, s.partition, s.start) for s in wanted])
        quiet_since = time.monotonic()
        try:
            while not self.merge.done:
                if self.clients.fatal_error is not None:
                    raise CollectError(self.clients.fatal_error)
                messages = self.consumer.consume(CONSUME_BATCH, CONSUME_TIMEOUT_S)
                if messages:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > STALL_S:
                    raise CollectError(f"no record for {STALL_S:.0f} s; unfinished: {self._left()}")
                before = sum(s.read for s in self.sources)
                for message in messages:
                    self._route(message)
                self._drain()
                self._resume()
                read = sum(s.read for s in self.sources) - before
                self.progress.update(read, self.labeller.tally, self.labeller.held_sessions)
        finally:
            self.progress.close()

    def _left(self) -> str:
        left = [s for s in self.sources if not self.merge.finished(s.index)]
        return ", ".join(f"{s.topic}[{s.partition}] at {s.next_offset}/{s.end}" for s in left)

    def _finish(self, source: _Source) -> None:
        self.merge.finish(source.index)
        if not source.paused:
            self.consumer.pause([source.tp])
            source.paused = True

    def _route(self, message: Message) -> None:
        key = (str(message.topic()), int(message.partition() or 0))
        source = self.by_key.get(key)
        error = message.error()
        if source is None or self.merge.finished(source.index):
            return  # fetched before its partition was finished and paused
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                if not source.bounded:
                    self._finish(source)
                return
            logger.warning("consume error topic=%s partition=%d: %s", key[0], key[1], error.str())
            return
        offset = int(message.offset() or 0)
        if offset < source.next_offset:
            return  # delivered again after a pause (never fed twice)
        if offset >= source.end:
            self._finish(source)
            return
        source.read += offset - source.next_offset + 1
        source.next_offset = offset + 1
        kind, time_ms = message.timestamp()
        if kind == TIMESTAMP_NOT_AVAILABLE:
            self.labeller.tally.skipped["no_timestamp"] += 1
        elif time_ms < source.lower_ms:
            self.labeller.tally.skipped["out_of_range"] += 1
        elif time_ms > source.upper_ms:
            self._finish(source)  # the first record past the end stops the partition
            return
        else:
            source.last_ms = max(source.last_ms, time_ms)
            self.merge.push(source.index, time_ms, message)
        if offset >= source.end - 1:
            self._finish(source)
        elif self.merge.buffered(source.index) >= self.config.buffer_records and not source.paused:
            self.consumer.pause([source.tp])
            source.paused = True

    def _drain(self) -> None:
        while (merged := self.merge.pop()) is not None:
            if merged.time_ms - 1 > self.watermark:
                self.watermark = merged.time_ms - 1
                self.emit(self.labeller.advance(self.watermark))
            message = merged.item
            if self.sources[merged.source].role == "event":
                self.labeller.event(merged.time_ms, message.value(), message.key())
            else:
                self.labeller.outcome(merged.time_ms, message.value())

    def _resume(self) -> None:
        low = self.config.buffer_records // 2
        resumed = [
            s
            for s in self.sources
            if s.paused and not self.merge.finished(s.index) and self.merge.buffered(s.index) <= low
        ]
        if resumed:
            self.consumer.resume([s.tp for s in resumed])
            for source in resumed:
                source.paused = False


def collect(
    config: CollectConfig,
    connection: BrokerConnection,
    store: Store,
    clock: Callable[[], float] = time.time,
) -> CollectSummary:
    """Collect the range into ``config.out``; the summary written beside the parts."""
    started_ms = round(clock() * 1000)
    clients = _Clients()
    writer = PartWriter(config.out, store, config.part_rows)  # refuses an existing dataset
    consumer: Consumer | None = None
    labeller = Labeller(
        config.window_ms,
        config.missing,
        config.max_sessions,
        config.max_pending_outcomes,
        config.framing,
        config.max_message_bytes,
    )
    times: list[int] = []

    def emit(rows: list[Row]) -> None:
        if rows:
            low, high = min(r.time_ms for r in rows), max(r.time_ms for r in rows)
            times[:] = [min(times[0], low), max(times[1], high)] if times else [low, high]
            writer.add(rows)

    try:
        consumer = Consumer(consumer_config(connection, clients.on_error))
        sources = _plan(consumer, config)
        logger.info(
            "collect range=%s input_topic=%s outcome_topic=%s outcome_window_s=%g "
            "missing_outcome=%s partitions=%d records=%d out=%s",
            config.time_range,
            config.input_topic,
            config.outcome_topic,
            config.window_s,
            config.missing,
            len(sources),
            sum(s.end - s.start for s in sources),
            config.out,
        )
        _Reader(consumer, clients, config, sources, labeller, emit).run()
        grace_ms = round(config.grace_s * 1000)
        final = min(s.complete_through(started_ms, grace_ms) for s in sources)
        emit(labeller.advance(final))
        labeller.close()
        writer.flush()
        tally = labeller.tally
        summary = CollectSummary(
            input_topic=config.input_topic,
            outcome_topic=config.outcome_topic,
            range_from=iso_ms(config.time_range.from_ms),
            range_to=iso_ms(config.time_range.to_ms),
            outcome_window_seconds=config.window_s,
            missing_outcome=config.missing,
            collected_at=iso_ms(started_ms),
            rows=tally.rows,
            positives=tally.positives,
            event_time_min=iso_ms(times[0]) if times else None,
            event_time_max=iso_ms(times[1]) if times else None,
            counts=tally.as_dict(),
            parts=list(writer.parts),
        )
        writer.close(summary)
    except KafkaException as exc:
        writer.abort()
        raise CollectError(f"kafka: {exc}") from exc
    except BaseException:
        writer.abort()
        raise
    finally:
        if consumer is not None:
            consumer.close()
    logger.info("collect done out=%s parts=%d %s", config.out, len(summary.parts), tally.line())
    return summary


# --- the command line ---------------------------------------------------------------------


def _window(text: str) -> float:
    try:
        seconds = duration_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if not 0 < seconds <= 30 * 86_400:
        raise argparse.ArgumentTypeError("must be longer than 0 and at most 30d")
    return seconds


def _schema_ids(text: str | None) -> frozenset[int] | None:
    if text is None or not text.strip():
        return None
    try:
        ids = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated schema ids") from exc
    if any(not 0 <= i < 2**31 for i in ids):
        raise argparse.ArgumentTypeError(f"{text!r}: schema ids are 0 .. 2147483647")
    return ids


def _message_bytes(text: str) -> int:
    """``INPUT_MAX_MESSAGE_BYTES``'s rule, the consumer's: a whole number of at least 256."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of bytes") from exc
    if value < MIN_MESSAGE_BYTES:
        raise argparse.ArgumentTypeError(f"{value}: at least {MIN_MESSAGE_BYTES} bytes")
    return value


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training collect",
        description="Collect labelled sessions from the input and outcome topics over a time "
        "range into Parquet parts that python -m training --data reads.",
    )
    parser.add_argument(
        "--out", required=True, help="a new directory, or an empty s3://bucket/prefix"
    )
    parser.add_argument("--since", help="the range: the last D (90m, 24h, 7d) up to now")
    parser.add_argument(
        "--from",
        dest="from_",
        metavar="TIME",
        help="the range's start, ISO 8601 (2026-12-01T00:00:00Z; UTC when no offset)",
    )
    parser.add_argument("--to", metavar="TIME", help="the range's end (default: now)")
    parser.add_argument(
        "--input-topic",
        default=env.get("INPUT_TOPIC") or "sessions",
        help="session events (default $INPUT_TOPIC, else sessions)",
    )
    parser.add_argument(
        "--outcome-topic",
        default=env.get("OUTCOME_TOPIC") or OUTCOME_TOPIC,
        help=f"outcomes (default $OUTCOME_TOPIC, else {OUTCOME_TOPIC})",
    )
    parser.add_argument(
        "--outcome-window",
        type=_window,
        default=env.get("OUTCOME_WINDOW") or "24h",
        help="how long after its first event a session waits for its outcome "
        "(default $OUTCOME_WINDOW, else 24h)",
    )
    parser.add_argument(
        "--missing-outcome",
        choices=get_args(MissingOutcome),
        default=env.get("MISSING_OUTCOME") or "unknown",
        help="no outcome when the window closes: negative (written as a non-purchase) or "
        "unknown (left out, counted); default $MISSING_OUTCOME, else unknown",
    )
    parser.add_argument(
        "--input-format",
        choices=get_args(InputFormat),
        default=env.get("INPUT_FORMAT") or "auto",
        help="Schema Registry framing of the events, as the consumer reads them "
        "(default $INPUT_FORMAT, else auto)",
    )
    parser.add_argument(
        "--schema-registry-schema-ids",
        type=_schema_ids,
        default=env.get("SCHEMA_REGISTRY_SCHEMA_IDS"),
        help="schema ids accepted in framed events (default $SCHEMA_REGISTRY_SCHEMA_IDS, "
        "else any but 0)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=_message_bytes,
        default=env.get("INPUT_MAX_MESSAGE_BYTES") or str(DEFAULT_MAX_MESSAGE_BYTES),
        help="larger events are counted as message_too_large and left out, as the consumer "
        f"dead-letters them (default $INPUT_MAX_MESSAGE_BYTES, else {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    parser.add_argument(
        "--part-rows",
        type=positive_int,
        default=PART_ROWS,
        help=f"rows per Parquet part (default {PART_ROWS})",
    )
    parser.add_argument(
        "--max-sessions",
        type=positive_int,
        default=DEFAULT_MAX_SESSIONS,
        help="most sessions waiting for their outcome at once; past it a new session is "
        f"skipped and counted as session_cap (default {DEFAULT_MAX_SESSIONS})",
    )
    parser.add_argument(
        "--max-pending-outcomes",
        type=positive_int,
        default=DEFAULT_MAX_PENDING_OUTCOMES,
        help=f"most outcomes held before their session (default {DEFAULT_MAX_PENDING_OUTCOMES})",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """Exit status 0 when the dataset is written, 1 when the collect failed, 2 for bad
    arguments or settings."""
    env = os.environ if environ is None else environ
    parser = _parser(env)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if isinstance(args.outcome_window, str):  # the default, from the environment
        try:
            args.outcome_window = _window(args.outcome_window)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"OUTCOME_WINDOW: {exc}")
    if isinstance(args.schema_registry_schema_ids, str):
        try:
            args.schema_registry_schema_ids = _schema_ids(args.schema_registry_schema_ids)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"SCHEMA_REGISTRY_SCHEMA_IDS: {exc}")
    if isinstance(args.max_message_bytes, str):
        try:
            args.max_message_bytes = _message_bytes(args.max_message_bytes)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"INPUT_MAX_MESSAGE_BYTES: {exc}")
    try:
        span = resolve_range(args.since, args.from_, args.to, round(time.time() * 1000))
    except ValueError as exc:
        parser.error(str(exc))
    if args.input_topic == args.outcome_topic:
        parser.error("the input and outcome topics must be different topics")
    try:
        connection = connection_from_environment(env, RESERVED_PROPERTIES)
    except BrokerSettingError as exc:
        parser.error(str(exc))
    config = CollectConfig(
        out=args.out,
        time_range=span,
        input_topic=args.input_topic,
        outcome_topic=args.outcome_topic,
        window_s=args.outcome_window,
        missing=cast(MissingOutcome, args.missing_outcome),
        framing=Framing(cast(InputFormat, args.input_format), args.schema_registry_schema_ids),
        max_message_bytes=args.max_message_bytes,
        part_rows=args.part_rows,
        max_sessions=args.max_sessions,
        max_pending_outcomes=args.max_pending_outcomes,
    )
    try:
        summary = collect(config, connection, Store(S3Options.from_environ(env)))
    except (CollectError, DatasetError, StorageError) as exc:
        logger.error("collect failed: %s", exc)
        return 1
    print(f"DATA={config.out}")
    print(f"ROWS={summary.rows}")
    return 0
