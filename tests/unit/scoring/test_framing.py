"""Schema Registry framing, tested with the real `JSONSerializer` against its `mock://` registry.

No Schema Registry server is available on these machines; confluent-kafka's own mock client
registers the schema and assigns its id, and the serializer writes the real wire format (and
validates each event against the published schema before it frames it).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from contract.__main__ import schema_text
from contract.framing import Framing, InputFormat
from contract.schema import SessionEvent
from scoring.decode import Rejection, decode_batch, decode_message
from tests.unit.scoring.fakes import FakeMessage, valid_event

MAX_BYTES = 65_536
Serialize = Callable[[dict[str, object]], bytes]


@pytest.fixture
def serialize() -> Serialize:
    """confluent-kafka's JSONSerializer with the published schema, on a fresh mock registry."""
    registry = SchemaRegistryClient.new_client({"url": "mock://shopper-intent-tests"})
    serializer = JSONSerializer(schema_text(), registry)
    context = SerializationContext("sessions", MessageField.VALUE)

    def run(event: dict[str, object]) -> bytes:
        value = serializer(event, context)
        assert value is not None
        return value

    return run


def _schema_id(value: bytes) -> int:
    return int.from_bytes(value[1:5], "big")


def test_framed_and_plain_values_decode_to_the_same_event(serialize: Serialize) -> None:
    # The pandas way: counts and codes as floats with a zero fractional part.
    event = {**valid_event(), "Administrative": 2.0, "Region": 1.0, "ProductRelated": 12.0}
    framed = serialize(event)
    assert framed[:1] == b"\x00"
    plain = json.dumps(event).encode()
    decoded = decode_batch([FakeMessage(framed, 0), FakeMessage(plain, 1)], MAX_BYTES)
    assert decoded.rejections == []
    first, second = decoded.events
    assert first == second
    assert isinstance(first, SessionEvent)
    assert (first.Administrative, first.Region) == (2, 1)
    assert isinstance(first.Region, int)


def test_listed_schema_id_is_accepted_and_unknown_one_dead_lettered(serialize: Serialize) -> None:
    framed = serialize(valid_event())
    schema_id = _schema_id(framed)
    listed = Framing("auto", frozenset({schema_id}))
    assert isinstance(decode_message(FakeMessage(framed), MAX_BYTES, listed), SessionEvent)
    other = Framing("schema_registry_json", frozenset({schema_id + 1}))
    rejection = decode_message(FakeMessage(framed), MAX_BYTES, other)
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field) == ("unknown_schema_id", "<message>")
    assert str(schema_id) in rejection.reason


def test_input_format_json_refuses_frames_and_schema_registry_json_refuses_plain(
    serialize: Serialize,
) -> None:
    framed = serialize(valid_event())
    plain = json.dumps(valid_event()).encode()
    as_json = decode_message(FakeMessage(framed), MAX_BYTES, Framing("json"))
    assert isinstance(as_json, Rejection)
    assert as_json.error_type == "invalid_json"
    framed_only = Framing("schema_registry_json")
    assert isinstance(decode_message(FakeMessage(framed), MAX_BYTES, framed_only), SessionEvent)
    unframed = decode_message(FakeMessage(plain), MAX_BYTES, framed_only)
    assert isinstance(unframed, Rejection)
    assert unframed.error_type == "not_framed"


@pytest.mark.parametrize("value", [b"\x00", b"\x00\x00\x00\x00\x01"])
def test_header_without_a_value_is_an_invalid_frame(value: bytes) -> None:
    rejection = decode_message(FakeMessage(value), MAX_BYTES)
    assert isinstance(rejection, Rejection)
    assert rejection.error_type == "invalid_frame"


def test_framed_bad_event_names_its_field_after_the_header(serialize: Serialize) -> None:
    header = serialize(valid_event())[:5]
    bad = header + json.dumps({**valid_event(), "Region": 2.5}).encode()
    rejection = decode_message(FakeMessage(bad), MAX_BYTES)
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field) == ("int_type", "Region")


@pytest.mark.parametrize(
    ("field", "value"),
    [("Region", 10**30), ("ProductRelated_Duration", 1e308), ("session_id", "\u200b\u2060")],
)
def test_the_serializer_refuses_what_the_consumer_refuses(
    serialize: Serialize, field: str, value: object
) -> None:
    """The producer's validation (the registered schema) and the consumer agree on the bounds."""
    event = {**valid_event(), field: value}
    with pytest.raises(SerializationError):
        serialize(event)
    rejection = decode_message(FakeMessage(json.dumps(event).encode()), MAX_BYTES)
    assert isinstance(rejection, Rejection)
    assert rejection.field == field


def _frame(schema_id: int) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + json.dumps(valid_event()).encode()


@pytest.mark.parametrize("input_format", ["auto", "schema_registry_json"])
def test_schema_id_0_is_refused_unless_listed(input_format: InputFormat) -> None:
    """A registry never assigns id 0 (its ids start at 1): with no SCHEMA_REGISTRY_SCHEMA_IDS a
    frame with id 0 is dead-lettered, not scored; listing 0 accepts it."""
    rejection = decode_message(FakeMessage(_frame(0)), MAX_BYTES, Framing(input_format))
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field) == ("unknown_schema_id", "<message>")
    assert "schema id 0" in rejection.reason
    assert "SCHEMA_REGISTRY_SCHEMA_IDS" in rejection.reason
    assert isinstance(decode_message(FakeMessage(_frame(1)), MAX_BYTES), SessionEvent)
    listed = Framing(input_format, frozenset({0}))
    assert isinstance(decode_message(FakeMessage(_frame(0)), MAX_BYTES, listed), SessionEvent)


@pytest.mark.parametrize("schema_id", [0, 1, 200, 100_000, 2**31 - 1])
def test_input_format_json_calls_every_framed_value_invalid_json(schema_id: int) -> None:
    """Whatever the id's bytes: 200 is 0xC8 and 100000 has 0x86 0xA0, not UTF-8, which used to
    make the frame `invalid_utf8`. A NUL is valid UTF-8; the id after it may not be."""
    rejection = decode_message(FakeMessage(_frame(schema_id)), MAX_BYTES, Framing("json"))
    assert isinstance(rejection, Rejection)
    assert (rejection.error_type, rejection.field) == ("invalid_json", "<root>")
    assert "INPUT_FORMAT=json" in rejection.reason
    assert "magic byte" in rejection.reason
