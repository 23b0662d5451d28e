"""Schema Registry framing: values as confluent-kafka's `JSONSerializer` writes them, or plain JSON.

A Confluent Schema Registry serializer prefixes each value with a magic byte `0` and the 4-byte
big-endian id of the registered schema (the "wire format"); the JSON text follows. Plain JSON
never starts with a NUL byte, so `auto` tells the two apart by the first byte alone.

`INPUT_FORMAT` says what the consumer takes: `auto` (both, the default), `json` (plain JSON
only: a framed value is then not JSON and dead-lettered as `invalid_json`) or
`schema_registry_json` (framed only: a plain value is `not_framed`). With
`SCHEMA_REGISTRY_SCHEMA_IDS` set, a frame whose id is not listed is `unknown_schema_id`; without
it, every id is read but 0, which a registry never assigns (its ids start at 1): a frame with id 0
is `unknown_schema_id` too, unless 0 is listed.
The schema to register is `python -m contract schema`; the consumer never calls the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

InputFormat = Literal["auto", "json", "schema_registry_json"]

MAGIC_BYTE: Final[bytes] = b"\x00"
HEADER_BYTES: Final[int] = 5
"""Magic byte plus a 4-byte big-endian schema id."""


@dataclass(frozen=True, slots=True)
class Framing:
    """How input values are framed; `schema_ids=None` accepts every schema id."""

    input_format: InputFormat = "auto"
    schema_ids: frozenset[int] | None = None


AUTO_FRAMING: Final[Framing] = Framing()
"""``INPUT_FORMAT=auto``, every schema id but 0: the consumer's default."""


@dataclass(frozen=True, slots=True)
class FrameRejection:
    """Why a value's framing is refused (`error_type` becomes the dead letter's `error.type`)."""

    error_type: Literal["not_framed", "invalid_frame", "unknown_schema_id", "invalid_json"]
    reason: str
    field: str = "<message>"


def unframe(value: bytes, framing: Framing) -> bytes | FrameRejection:
    """The JSON text of `value` with any Schema Registry header removed, or why it is refused."""
    if framing.input_format == "json":
        if value[:1] == MAGIC_BYTE:
            # Checked here: the 4-byte id after it may be invalid UTF-8 (id 200 is byte 0xC8),
            # which would otherwise make a framed value `invalid_utf8` or `invalid_json` by id.
            return FrameRejection(
                "invalid_json",
                "INPUT_FORMAT=json and the value starts with the Schema Registry magic byte 0 "
                "(a framed value); JSON text never starts with a NUL byte",
                "<root>",
            )
        return value
    if value[:1] != MAGIC_BYTE:
        if framing.input_format == "schema_registry_json":
            return FrameRejection(
                "not_framed",
                "INPUT_FORMAT=schema_registry_json and the value has no Schema Registry header "
                f"(first byte {value[:1]!r}, expected the magic byte 0)",
            )
        return value
    if len(value) <= HEADER_BYTES:
        return FrameRejection(
            "invalid_frame",
            f"a Schema Registry frame is {HEADER_BYTES} header bytes and then the JSON value; "
            f"got {len(value)} bytes in all",
        )
    schema_id = int.from_bytes(value[1:HEADER_BYTES], "big")
    if schema_id == 0 and framing.schema_ids is None:
        return FrameRejection(
            "unknown_schema_id",
            "schema id 0 is never assigned by a Schema Registry (its ids start at 1); "
            "list 0 in SCHEMA_REGISTRY_SCHEMA_IDS to accept it",
        )
    if framing.schema_ids is not None and schema_id not in framing.schema_ids:
        allowed = ",".join(str(i) for i in sorted(framing.schema_ids))
        return FrameRejection(
            "unknown_schema_id",
            f"schema id {schema_id} is not in SCHEMA_REGISTRY_SCHEMA_IDS={allowed}",
        )
    return value[HEADER_BYTES:]
