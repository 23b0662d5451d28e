"""Poison input: a catalogue of bad messages interleaved with valid events (the suite's one test
of bad input through the broker; `tests/unit/scoring/test_limits.py` runs the catalogue through
decode)."""

from __future__ import annotations

import json
import re
import time

from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.kafka_io import produce, synthetic_events
from tests.integration.faults.support import Ledger, TopicReader, account, dead_letter_id

# Raised from the default so that 100k-deep nesting reaches the parser.
INPUT_MAX_MESSAGE_BYTES = 262_144


def poison_catalogue() -> list[tuple[str, bytes | None, str]]:
    """(kind, value, expected error.type): every kind of bad input the consumer must survive."""
    good = synthetic_events(1, seed=99, prefix="poison")[0]
    text = json.dumps(good)

    def event(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    def without(field: str) -> bytes:
        return json.dumps({k: v for k, v in good.items() if k != field}).encode()

    def literal(field: str, raw: str) -> bytes:
        """The good event with one value written as raw JSON text (e.g. NaN, a nested array)."""
        replaced = re.sub(rf'"{field}": [^,}}]+', f'"{field}": {raw}', text, count=1)
        assert raw in replaced
        return replaced.encode()

    return [
        ("malformed JSON", b"{this is not json", "invalid_json"),
        ("truncated JSON", text[: len(text) // 2].encode(), "invalid_json"),
        ("trailing garbage", text.encode() + b" }{", "invalid_json"),
        ("UTF-8 byte-order mark", b"\xef\xbb\xbf" + text.encode(), "invalid_json"),
        ("binary", bytes(range(256)) * 4, "invalid_utf8"),
        ("invalid UTF-8 inside a JSON string", b'{"session_id": "\xff\xfe"}', "invalid_utf8"),
        ("empty value", b"", "empty_value"),
        ("null value (tombstone)", None, "empty_value"),
        (
            "over INPUT_MAX_MESSAGE_BYTES",
            event(pad="p" * (INPUT_MAX_MESSAGE_BYTES + 1)),
            "message_too_large",
        ),
        ("JSON array", b"[1, 2, 3]", "not_an_object"),
        ("JSON string", b'"hello"', "not_an_object"),
        ("JSON null", b"null", "not_an_object"),
        ("missing envelope (session_id)", without("session_id"), "missing"),
        ("missing feature", without("Region"), "missing"),
        ("wrong type: string for a count", event(ProductRelated="many"), "int_type"),
        ("wrong type: numeric string", event(Administrative="3"), "int_type"),
        ("wrong type: fractional count", event(Administrative=3.5), "int_type"),
        ("wrong type: bool for a code", event(Browser=True), "int_type"),
        ("wrong type: string for a bool", event(Weekend="true"), "bool_type"),
        ("null where not nullable", event(PageValues=None), "float_type"),
        ("NaN", literal("SpecialDay", "NaN"), "finite_number"),
        ("Infinity", literal("ExitRates", "Infinity"), "finite_number"),
        ("-Infinity", literal("PageValues", "-Infinity"), "finite_number"),
        ("negative count", event(Administrative=-2), "greater_than_equal"),
        ("negative duration", event(Administrative_Duration=-5.0), "duration_range"),
        ("rate over 1", event(BounceRates=3.5), "less_than_equal"),
        ("code 0", event(Region=0), "greater_than_equal"),
        ("unknown month", event(Month="Smarch"), "literal_error"),
        ("unknown visitor type", event(VisitorType="Robot"), "literal_error"),
        ("huge string (60 kB) as month", event(Month="M" * 60_000), "literal_error"),
        ("huge session_id (60 kB)", event(session_id="s" * 60_000), "string_too_long"),
        ("blank session_id", event(session_id="   "), "string_blank"),
        ("bad event_time", event(event_time="yesterday"), "rfc3339_datetime"),
        ("extra field", event(utm_source="newsletter"), "extra_forbidden"),
        ("label present", event(Revenue=True), "label_not_allowed"),
        ("duplicate JSON key", text[:-1].encode() + b', "Region": 3}', "duplicate_key"),
        ("nested object for a number", event(Administrative={"a": {"b": 1}}), "int_type"),
        ("nested arrays 300 deep", literal("PageValues", "[" * 300 + "]" * 300), "invalid_json"),
        (
            "nested arrays 100,000 deep",
            literal("PageValues", "[" * 100_000 + "]" * 100_000),
            "invalid_json",
        ),
        # Every number the model reads has an upper bound: this is rejected before scoring.
        ("code over int64", event(Region=10**30), "less_than_equal"),
        ("duration 1e308", event(ProductRelated_Duration=1e308), "less_than_equal"),
        ("invisible session_id", event(session_id="\u200b\u2060\ufeff"), "string_blank"),
    ]


def test_poison_catalogue_is_dead_lettered_and_every_valid_event_scored(
    kafka_bootstrap: str, topics: Topics, start_consumer: ConsumerFactory, ledger: Ledger
) -> None:
    started = time.monotonic()
    catalogue = poison_catalogue()
    assert len(catalogue) >= 25
    valid = synthetic_events(450, seed=109, prefix="ok")
    assert len(catalogue) <= len(valid) // 10, "every poison needs a slot after ten valid events"
    messages: list[tuple[bytes | None, bytes | None]] = []
    keyless = {str(valid[i]["session_id"]) for i in range(0, len(valid), 50)}
    for i, event in enumerate(valid):
        session_id = str(event["session_id"])
        # The lead's policy: a null key is not an error; such an event is scored, keyless.
        key = None if session_id in keyless else session_id.encode()
        messages.append((key, json.dumps(event).encode()))
        if i % 10 == 0 and i // 10 < len(catalogue):
            messages.append((f"poison-{i // 10}".encode(), catalogue[i // 10][1]))
    produce(kafka_bootstrap, topics.input, messages)

    consumer = start_consumer(
        topics, BATCH_MAX_MESSAGES="25", INPUT_MAX_MESSAGE_BYTES=str(INPUT_MAX_MESSAGE_BYTES)
    )
    wanted = [str(e["session_id"]) for e in valid] + [f"poison-{i}" for i in range(len(catalogue))]
    outputs_reader = TopicReader(kafka_bootstrap, topics.output)
    dead_reader = TopicReader(kafka_bootstrap, topics.dlq)
    try:
        outputs = outputs_reader.poll_until(
            outputs_reader.has_ids(e["session_id"] for e in valid), "every valid event", 180
        )
        dead = dead_reader.poll_until(
            dead_reader.has_ids(wanted[len(valid) :], by=dead_letter_id), "every poison", 120
        )
        outputs, dead = outputs_reader.settle(1.0), dead_reader.settle(1.0)
    finally:
        outputs_reader.close()
        dead_reader.close()

    result = account(wanted, outputs, dead)
    ledger.record(
        f"poison input ({len(catalogue)} kinds) among valid events",
        runs=1,
        accounting=result,
        seconds=time.monotonic() - started,
    )
    result.assert_nothing_lost()
    assert result.duplicates == 0
    assert result.scored == len(valid)
    wrong = []
    by_key = {record.key: record for record in dead}
    for i, (kind, value, rule) in enumerate(catalogue):
        record = by_key[f"poison-{i}".encode()]
        got = record.headers["error.type"].decode()
        if got != rule:
            wrong.append(f"{kind}: {got} (expected {rule}): {record.headers['error.message']!r}")
        assert record.headers["error.message"], kind
        assert record.headers["source.topic"].decode() == topics.input
        assert int(record.headers["source.offset"]) >= 0, kind
        assert record.headers["contract.version"], kind
        assert (record.value or b"") == (value or b""), kind  # the original bytes, whole
    assert not wrong, "\n".join(wrong)
    for record in outputs:
        if record.json()["session_id"] in keyless:
            assert record.key is None
    assert consumer.exit_code() is None, consumer.log_tail()
    assert consumer.metric("scorer_messages_total", 'outcome="rejected"') == len(catalogue)
    assert consumer.terminate() == 0
