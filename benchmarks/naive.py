"""The naive baseline: one message at a time, the way a first version would be written.

``python -m benchmarks.naive`` with the consumer's environment. For each message: poll,
validate (`contract.validation.parse_event`), `predict_proba` of the loaded pipeline on a one-row
frame, produce, wait for the acknowledgement, commit that message's offset. Invalid events are
skipped (the benchmark's input has none). Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import joblib
import numpy as np
from confluent_kafka import Consumer, Producer

from benchmarks._client import acknowledged, load_settings, run_until_stopped
from consumer.kafka import records_only
from consumer.publish import DeliveryErrors, output_records, produce_when_room, rfc3339_now
from contract.errors import ContractViolation
from contract.frame import events_to_frame
from contract.validation import parse_event
from scoring.gates import artifact_entry, manifest_beside
from scoring.scorer import ModelInfo


def main() -> int:
    settings = load_settings()
    manifest = manifest_beside(settings.model_path)
    entry = artifact_entry(manifest, settings.model_path)
    info = ModelInfo(manifest.build_id, entry.variant, manifest.git_sha, entry.threshold)
    pipeline = joblib.load(settings.model_path)

    def turn(consumer: Consumer, producer: Producer, errors: DeliveryErrors) -> None:
        message = consumer.poll(settings.batch_max_wait_ms / 1000)
        if message is None or not records_only([message]):
            return
        try:
            event = parse_event(message.value() or b"")
        except ContractViolation:
            return
        probability = pipeline.predict_proba(events_to_frame([event]))[:, 1]
        (record,) = output_records(
            [event], [message], np.asarray(probability, dtype=np.float64), info, rfc3339_now()
        )
        produce_when_room(producer, settings.output_topic, record, message.key())
        acknowledged(producer, errors, settings.publish_timeout_s)
        # Asynchronous, as `commit(message)` is by default: the flush above is the wait.
        consumer.commit(message=message, asynchronous=True)

    return run_until_stopped(settings, turn)


if __name__ == "__main__":
    raise SystemExit(main())
