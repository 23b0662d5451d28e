"""The event contract: one browsing session, as producers send it and the scorer reads it.

`SessionEvent` is an envelope (`session_id`, optional `event_time`) plus the 17 feature columns of
the UCI "Online Shoppers Purchasing Intention" dataset, named exactly as the dataset's columns.

Policy (see docs/contract.md for the full table and the versioning rules):

- Unknown fields are rejected (`extra="forbid"`, rule `extra_forbidden`, naming the field). The
  label `Revenue` is rejected with its own rule `label_not_allowed`: the outcome is never an input.
  (pydantic reports it as `extra_forbidden`; `contract.errors` renames the rule.)
- Types are strict, because events come from programs, not from a CSV file: a count sent as the
  string `"3"`, or `Weekend` sent as `"true"`, is a wrong type; `true` is not an integer; a count
  must be a JSON integer (`3`, not `3.0`). Integers are accepted where a number is expected.
- NaN and Infinity are rejected everywhere (rule `finite_number`).
- Unknown values: the three durations accept `-1` (the dataset's own sentinel) or `null`; the
  three page counts and the two rates accept `null` (14 dataset rows have them empty). They are
  required keys all the same: a producer says "unknown" explicitly, it cannot forget a field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

CONTRACT_VERSION: Final[str] = "1.0.0"
"""Semantic version of the event contract.

Patch: documentation only; minor: a new optional field; major: anything breaking.
"""

SCHEMA_ID: Final[str] = f"urn:shopper-intent:contract:session-event:{CONTRACT_VERSION}"
SESSION_ID_MAX_LENGTH: Final[int] = 128
LABEL_COLUMN: Final[str] = "Revenue"

COUNT_COLUMNS: Final[tuple[str, ...]] = ("Administrative", "Informational", "ProductRelated")
DURATION_COLUMNS: Final[tuple[str, ...]] = (
    "Administrative_Duration",
    "Informational_Duration",
    "ProductRelated_Duration",
)
RATE_COLUMNS: Final[tuple[str, ...]] = ("BounceRates", "ExitRates")
CODE_COLUMNS: Final[tuple[str, ...]] = ("OperatingSystems", "Browser", "Region", "TrafficType")
CATEGORICAL_COLUMNS: Final[tuple[str, ...]] = ("Month", "VisitorType")

FEATURE_COLUMNS: Final[tuple[str, ...]] = (
    "Administrative",
    "Administrative_Duration",
    "Informational",
    "Informational_Duration",
    "ProductRelated",
    "ProductRelated_Duration",
    "BounceRates",
    "ExitRates",
    "PageValues",
    "SpecialDay",
    "Month",
    "OperatingSystems",
    "Browser",
    "Region",
    "TrafficType",
    "VisitorType",
    "Weekend",
)
"""The 17 dataset feature columns, in the dataset's order. `Revenue` is not among them."""

DURATION_UNKNOWN: Final[float] = -1.0
"""The dataset's own sentinel for an unknown duration (33 rows)."""

MonthName = Literal[
    "Jan", "Feb", "Mar", "Apr", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
]
VisitorTypeName = Literal["Returning_Visitor", "New_Visitor", "Other"]
MONTHS: Final[tuple[str, ...]] = get_args(MonthName)
"""Month names in the dataset's spelling (note `June`); Jan and Apr are valid though unseen."""
VISITOR_TYPES: Final[tuple[str, ...]] = get_args(VisitorTypeName)

# RFC 3339 `date-time` (section 5.6) with a mandatory offset; the calendar check follows.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def _check_session_id(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("string_blank", "session_id must contain a non-blank character")
    return value


def _check_event_time(value: str) -> str:
    if _RFC3339.fullmatch(value) is None:
        raise PydanticCustomError(
            "rfc3339_datetime",
            "event_time must be an RFC 3339 date-time with a timezone offset, e.g. "
            "2024-05-01T12:00:00Z",
        )
    try:
        datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError as exc:
        raise PydanticCustomError(
            "rfc3339_datetime", "event_time is not a real date-time: {reason}", {"reason": str(exc)}
        ) from exc
    return value


def _check_duration(value: float) -> float:
    if value < 0 and value != DURATION_UNKNOWN:
        raise PydanticCustomError(
            "duration_range",
            "a duration is >= 0 seconds, or -1 (or null) when unknown; got {value}",
            {"value": value},
        )
    return value


_DURATION_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "minimum": 0}, {"const": -1}, {"type": "null"}],
    "description": "Seconds spent on pages of this kind; -1 or null when unknown.",
}

SessionId = Annotated[
    StrictStr,
    Field(min_length=1, max_length=SESSION_ID_MAX_LENGTH, json_schema_extra={"pattern": r"\S"}),
    AfterValidator(_check_session_id),
]
EventTime = Annotated[
    StrictStr,
    AfterValidator(_check_event_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": "^" + _RFC3339.pattern + "$",
            "description": "RFC 3339 date-time with a timezone offset.",
        }
    ),
]
Count = Annotated[StrictInt, Field(ge=0)]
Duration = Annotated[
    Annotated[StrictFloat, AfterValidator(_check_duration)] | None,
    WithJsonSchema(_DURATION_JSON_SCHEMA),
]
Rate = Annotated[StrictFloat, Field(ge=0.0, le=1.0)]
Code = Annotated[StrictInt, Field(ge=1)]


class SessionEvent(BaseModel):
    """One shopping session to score: envelope plus the 17 dataset features, nothing else."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        frozen=True,
        title="SessionEvent",
        json_schema_extra={"$id": SCHEMA_ID, "version": CONTRACT_VERSION},
    )

    session_id: SessionId = Field(description="Producer's id of the session, echoed back.")
    event_time: EventTime | None = Field(
        default=None, description="When the session snapshot was taken (RFC 3339 with offset)."
    )

    Administrative: Count | None = Field(description="Administrative pages visited; null unknown.")
    Administrative_Duration: Duration
    Informational: Count | None = Field(description="Informational pages visited; null unknown.")
    Informational_Duration: Duration
    ProductRelated: Count | None = Field(description="Product pages visited; null unknown.")
    ProductRelated_Duration: Duration
    BounceRates: Rate | None = Field(description="Mean bounce rate of the pages, in [0, 1].")
    ExitRates: Rate | None = Field(description="Mean exit rate of the pages, in [0, 1].")
    PageValues: Annotated[StrictFloat, Field(ge=0.0)] = Field(
        description="Mean Google Analytics page value of the pages visited, >= 0."
    )
    SpecialDay: Rate = Field(description="Closeness to a special day such as Mother's Day, [0, 1].")
    Month: MonthName = Field(description="Month in the dataset's spelling (note 'June').")
    OperatingSystems: Code = Field(description="Operating-system code, a positive integer.")
    Browser: Code = Field(description="Browser code, a positive integer.")
    Region: Code = Field(description="Region code, a positive integer.")
    TrafficType: Code = Field(description="Traffic-source code, a positive integer.")
    VisitorType: VisitorTypeName = Field(description="Returning_Visitor, New_Visitor or Other.")
    Weekend: StrictBool = Field(description="Whether the session happened on a weekend.")

    @property
    def event_datetime(self) -> datetime | None:
        """`event_time` as an aware datetime (the original string is kept in `event_time`)."""
        if self.event_time is None:
            return None
        return datetime.fromisoformat(self.event_time.upper().replace(" ", "T"))


def session_event_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) producers validate against before they send."""
    schema = SessionEvent.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
