"""The ceiling: consume -> produce with the consumer's client settings, no decoding, no scoring.

``python -m benchmarks.passthrough`` with the consumer's environment (INPUT_TOPIC, OUTPUT_TOPIC,
BATCH_MAX_MESSAGES, ...). Same at-least-once shape as the consumer: a batch's records are
produced, acknowledged (acks=all, idempotent producer), and only then its offsets are stored.
Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from benchmarks._client import acknowledged, load_settings, run_until_stopped
from consumer.inflight import BatchOffsets
from consumer.kafka import records_only
from consumer.publish import DeliveryErrors, produce_when_room


def main() -> int:
    settings = load_settings()
    wait_s = settings.batch_max_wait_ms / 1000

    def turn(consumer: Consumer, producer: Producer, errors: DeliveryErrors) -> None:
        producer.poll(0)
        # A batch is what has arrived, as in the consumer's loop (`ScoringLoop._next_batch`):
        # wait for a first message, then take what is already fetched. `consume(n, wait)`
        # would hold every batch until n arrived or the wait ran out (~65 ms p50 at 2,000/s).
        first = consumer.poll(wait_s)
        if first is None:
            return
        more = settings.batch_max_messages - 1
        messages = records_only([first, *(consumer.consume(more, 0) if more else [])])
        if not messages:
            return
        for message in messages:
            produce_when_room(producer, settings.output_topic, message.value(), message.key())
        acknowledged(producer, errors, settings.publish_timeout_s)
        consumer.store_offsets(offsets=BatchOffsets.of(messages).next_positions())

    return run_until_stopped(settings, turn)


if __name__ == "__main__":
    raise SystemExit(main())
