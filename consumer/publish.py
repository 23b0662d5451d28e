"""What is published: output records for OUTPUT_TOPIC, dead letters for DLQ_TOPIC.

Producing them and learning which were acknowledged is `consumer.delivery`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
from confluent_kafka import KafkaError, Message, Producer

from contract.limits import MAX_KEY_BYTES
from contract.schema import CONTRACT_VERSION, SessionEvent
from scoring.decode import MessageLike, Rejection
from scoring.scorer import ModelInfo
from scoring.tracing import trace_headers

logger = logging.getLogger(__name__)

# Dead letters keep the original bytes, up to this size; a longer value is cut and says so in a
# header, so that a huge poison message cannot also be too large for the dead-letter topic.
DLQ_MAX_PAYLOAD_BYTES = 512 * 1024

_HEADER_OVERHEAD_BYTES = 10  # per header: two varint lengths (at most 5 bytes each)


# --- what a dead letter may take: fit_dead_letter cuts to this ------------------------------

LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
"""librdkafka's default `message.max.bytes`: key + value + headers over it fail `produce()`."""
DEAD_LETTER_MARGIN_BYTES = 4096
"""Left under `message.max.bytes` for the record's framing (lengths, varints, timestamps)."""
DEAD_LETTER_MIN_BUDGET_BYTES = 16_384
"""The smallest budget a dead letter can be fitted to: its headers alone take up to ~5 kB."""


def dead_letter_budget(message_max_bytes: int = LIBRDKAFKA_MESSAGE_MAX_BYTES) -> int:
    """Bytes of key + value + headers a dead letter may take under the producer's limit."""
    budget = message_max_bytes - DEAD_LETTER_MARGIN_BYTES
    if budget < DEAD_LETTER_MIN_BUDGET_BYTES:
        raise ValueError(
            f"message.max.bytes={message_max_bytes} leaves {budget} bytes for a dead letter; "
            f"at least {DEAD_LETTER_MIN_BUDGET_BYTES + DEAD_LETTER_MARGIN_BYTES} is needed"
        )
    return budget


DEAD_LETTER_BUDGET_BYTES = dead_letter_budget()
"""The budget under librdkafka's default `message.max.bytes`: 995,904 bytes."""


def rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def output_records(
    events: Sequence[SessionEvent],
    messages: Sequence[MessageLike],
    probabilities: npt.NDArray[np.float64],
    info: ModelInfo,
    scored_at: str,
) -> list[bytes]:
    """One JSON record per scored event (schema: consumer/output_record.schema.json).

    The bytes equal `reference_output_record` exactly (the unit tests compare both on random
    inputs). The fields that are the same for the whole batch are serialised once; per record
    only the varying values go through `orjson.dumps`, so string escaping and float formatting
    are orjson's own.
    """
    threshold = info.threshold
    shared = orjson.dumps(
        {
            "threshold": threshold,
            "model_build_id": info.build_id,
            "model_variant": info.variant,
            "contract_version": CONTRACT_VERSION,
            "scored_at": scored_at,
        }
    )[1:-1]
    dumps = orjson.dumps
    middles: dict[str | None, bytes] = {}  # per source topic: shared fields + '"source":{...'
    records = []
    for event, message, probability in zip(events, messages, probabilities.tolist(), strict=True):
        topic = message.topic()
        middle = middles.get(topic)
        if middle is None:
            middle = b"," + shared + b',"source":{"topic":' + dumps(topic) + b',"partition":'
            middles[topic] = middle
        event_time = event.event_time
        records.append(
            _RECORD
            % (
                dumps(event.session_id),
                dumps(probability),
                b"true" if probability >= threshold else b"false",
                middle,
                dumps(message.partition()),
                dumps(message.offset()),
                b"" if event_time is None else b',"event_time":' + dumps(event_time),
            )
        )
    return records


_RECORD = b'{"session_id":%b,"probability":%b,"label":%b%b%b,"offset":%b}%b}'


def reference_output_record(
    event: SessionEvent,
    message: MessageLike,
    probability: float,
    info: ModelInfo,
    scored_at: str,
) -> bytes:
    """One output record built as a dict and serialised whole: the definition of the format."""
    record: dict[str, Any] = {
        "session_id": event.session_id,
        "probability": probability,
        "label": probability >= info.threshold,
        "threshold": info.threshold,
        "model_build_id": info.build_id,
        "model_variant": info.variant,
        "contract_version": CONTRACT_VERSION,
        "scored_at": scored_at,
        "source": {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
        },
    }
    if event.event_time is not None:
        record["event_time"] = event.event_time  # the producer's RFC 3339 text, as sent
    return orjson.dumps(record)


def dead_letter_headers(rejection: Rejection) -> list[tuple[str, bytes]]:
    """The reason and the source of a dead letter (each bounded: a few kB in all)."""
    message = rejection.message
    headers = [
        ("error.type", rejection.error_type.encode()[:256]),
        ("error.field", rejection.field.encode("utf-8", "replace")[:512]),
        ("error.message", rejection.reason.encode("utf-8", "replace")[:4096]),
        ("source.topic", (message.topic() or "").encode()),
        ("source.partition", str(message.partition()).encode()),
        ("source.offset", str(message.offset()).encode()),
        ("contract.version", CONTRACT_VERSION.encode()),
    ]
    return headers


def headers_size(headers: Sequence[tuple[str, bytes]]) -> int:
    """An upper bound of the bytes librdkafka counts for these headers."""
    return sum(len(name.encode()) + len(value) + _HEADER_OVERHEAD_BYTES for name, value in headers)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter ready to produce; key + value + headers fit the budget it was built for."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def fit_dead_letter(
    rejection: Rejection, budget_bytes: int = DEAD_LETTER_BUDGET_BYTES
) -> DeadLetter:
    """The dead letter of a rejection, cut to fit `budget_bytes` (see `dead_letter_budget`).

    The original value is kept up to `DLQ_MAX_PAYLOAD_BYTES` and the key whole when both fit;
    otherwise the value keeps what room the headers and a key of up to `MAX_KEY_BYTES` leave,
    and the key the rest. What is cut says so: `payload.truncated_from_bytes`,
    `key.truncated_from_bytes` (the original sizes). A Kafka record's key is not limited by
    `INPUT_MAX_MESSAGE_BYTES`, so without this a 999,900-byte key made the dead letter too large to
    produce, and the partition could not move past it.
    """
    message = rejection.message
    key, value = message.key(), message.value() or b""
    headers = dead_letter_headers(rejection) + trace_headers(message.headers())
    # Reserve room for both truncation headers, whether they are needed or not.
    reserved = headers_size([("payload.truncated_from_bytes", b"0" * 20)] * 2)
    room = budget_bytes - headers_size(headers) - reserved
    key_size = 0 if key is None else len(key)
    value_kept = min(len(value), DLQ_MAX_PAYLOAD_BYTES, room - min(key_size, MAX_KEY_BYTES))
    key_kept = min(key_size, room - value_kept)
    if value_kept < len(value):
        headers.append(("payload.truncated_from_bytes", str(len(value)).encode()))
        value = value[:value_kept]
    if key is not None and key_kept < key_size:
        headers.append(("key.truncated_from_bytes", str(key_size).encode()))
        key = key[:key_kept]
    return DeadLetter(key, value, headers)


ANY_PARTITION: Final[int] = -1
"""`produce`'s own default partition (librdkafka's RD_KAFKA_PARTITION_UA): the partitioner
chooses by the key."""


def produce_when_room(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    headers: Any = None,
    on_full: Callable[[], None] | None = None,
    on_delivery: Callable[..., None] | None = None,
) -> None:
    """Produce one record; while the local queue is full, serve the producer until there is room.

    Other refusals (`KafkaException`: the record too large, the topic unknown) are raised.

    The arguments go by position (confluent-kafka's documented order: topic, value, key,
    partition, on_delivery), and `headers` only when there are some: `produce` parses each
    keyword argument by name, which cost ~0.4 µs per keyword per record (benchmarks doc)."""
    while True:
        try:
            if headers:
                producer.produce(topic, value, key, ANY_PARTITION, on_delivery, headers=headers)
            else:
                producer.produce(topic, value, key, ANY_PARTITION, on_delivery)
            return
        except BufferError:
            if on_full is not None:
                on_full()
            producer.poll(0.05)


class DeliveryErrors(list[str]):
    """The producer's delivery callback; with only-error reports it sees failures only."""

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.append(f"{message.topic()}: {error.str()}")
