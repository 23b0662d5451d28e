"""The outcome contract: did a scored session end in a purchase? Sent later, by the order system.

`SessionOutcome` is one outcome event on the outcome topic (default ``session-outcomes``), keyed
by ``session_id`` like the session events, so that an outcome lands in the same partition
number as its session's score (see docs/quality.md, "Co-partitioning"). It is strict in the
same way as `contract.schema.SessionEvent`: unknown fields are rejected, ``purchased`` is a JSON
boolean, ``outcome_time`` an RFC 3339 date-time with an offset.

Versioning follows the event contract's rules (patch: docs; minor: a widening; major: breaking).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from contract.schema import EventTime, SessionId

OUTCOME_CONTRACT_VERSION: Final[str] = "1.0.0"
OUTCOME_SCHEMA_ID: Final[str] = (
    f"urn:shopper-intent:contract:session-outcome:{OUTCOME_CONTRACT_VERSION}"
)
OUTCOME_TOPIC: Final[str] = "session-outcomes"
"""The outcome topic's default name."""


class SessionOutcome(BaseModel):
    """What became of one session: ``purchased`` is the dataset's ``Revenue``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        title="SessionOutcome",
        json_schema_extra={"$id": OUTCOME_SCHEMA_ID, "version": OUTCOME_CONTRACT_VERSION},
    )

    contract_version: StrictStr = Field(
        pattern=r"^1\.\d+\.\d+$", description="Outcome contract version (1.x.y)."
    )
    session_id: SessionId = Field(description="The id the session event carried.")
    purchased: StrictBool = Field(description="Whether the session ended in a purchase.")
    outcome_time: EventTime = Field(
        description="When the order system decided the outcome (RFC 3339 with offset)."
    )

    @property
    def outcome_datetime(self) -> datetime:
        return datetime.fromisoformat(self.outcome_time.upper())


def parse_outcome(value: bytes) -> SessionOutcome:
    """One outcome record's value; pydantic's ValidationError when it breaks the contract."""
    return SessionOutcome.model_validate_json(value)


def outcome_json(session_id: str, purchased: bool, outcome_time: datetime) -> bytes:
    """The JSON value of an outcome record, as an order system sends it."""
    outcome = SessionOutcome(
        contract_version=OUTCOME_CONTRACT_VERSION,
        session_id=session_id,
        purchased=purchased,
        outcome_time=outcome_time.isoformat().replace("+00:00", "Z"),
    )
    return outcome.model_dump_json().encode()


def session_outcome_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) an order system validates against before it sends."""
    schema = SessionOutcome.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


__all__ = [
    "OUTCOME_CONTRACT_VERSION",
    "OUTCOME_SCHEMA_ID",
    "OUTCOME_TOPIC",
    "SessionOutcome",
    "ValidationError",
    "outcome_json",
    "parse_outcome",
    "session_outcome_json_schema",
]
