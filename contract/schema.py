"""The event contract: one browsing session, as producers send it and the scorer reads it.

`SessionEvent` is an envelope (`session_id`, optional `event_time`) plus the 17 feature columns of
the UCI "Online Shoppers Purchasing Intention" dataset, named exactly as the dataset's columns.

Policy (see docs/contract.md for the full table and the versioning rules):

- Unknown fields are rejected (`extra="forbid"`, rule `extra_forbidden`, naming the field). The
  label `Revenue` is rejected with its own rule `label_not_allowed`: the outcome is never an input.
  (pydantic reports it as `extra_forbidden`; `contract.errors` renames the rule.)
- Types are JSON's: a number with a zero fractional part is an integer, so `3` and `3.0` are
  both accepted where a count or a code is expected, while `3.5`, `"3"` and `true` are wrong
  types (`int_type`); `Weekend` sent as `"true"` or `1` is a wrong type. Integers are accepted
  where a number is expected.
- Every number the model reads has a lower and an upper bound (`COUNT_MAX`, `DURATION_MAX`,
  `PAGE_VALUE_MAX`, `CODE_MAX`, rates in [0, 1]), stated in the JSON Schema too, so a valid
  event always scores.
- NaN and Infinity are rejected everywhere (rule `finite_number`).
- Unknown values: the three durations accept `-1` (the dataset's own sentinel) or `null`; the
  three page counts and the two rates accept `null` (14 dataset rows have them empty). They are
  required keys all the same: a producer says "unknown" explicitly, it cannot forget a field.

Each field type is defined once in `contract.fields`, with its JSON Schema beside it; the rules
that JSON Schema cannot state are listed in docs/contract.md as the consumer's own.
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
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from contract.fields import VISIBLE_CHARACTER, JsonInteger, Seconds

CONTRACT_VERSION: Final[str] = "2.0.0"
"""Semantic version of the event contract.

Patch: documentation only; minor: a widening (a new optional field, or values accepted that
were rejected: every event valid before is still valid); major: anything breaking.
2.0.0: counts and codes accept `3.0`; upper bounds on every number; invisible `session_id`
and a space between date and time in `event_time` rejected.
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

DURATION_UNKNOWN: Final[int] = -1
"""The dataset's own sentinel for an unknown duration (33 rows)."""

COUNT_MAX: Final[int] = 1_000_000
"""Most pages of one kind in a session (the dataset's most is 705)."""
DURATION_MAX: Final[float] = 31_536_000.0
"""Most seconds on pages of one kind in a session: 365 days (the dataset's most is ~17.8 h)."""
PAGE_VALUE_MAX: Final[float] = 1_000_000.0
"""Largest mean page value (the dataset's largest is ~362)."""
CODE_MAX: Final[int] = 2**31 - 1
"""Largest code: a 32-bit signed integer, the widest code type producers commonly send."""

MonthName = Literal[
    "Jan", "Feb", "Mar", "Apr", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
]
VisitorTypeName = Literal["Returning_Visitor", "New_Visitor", "Other"]
MONTHS: Final[tuple[str, ...]] = get_args(MonthName)
"""Month names in the dataset's spelling (note `June`); Jan and Apr are valid though unseen."""
VISITOR_TYPES: Final[tuple[str, ...]] = get_args(VisitorTypeName)

# RFC 3339 `date-time` (section 5.6, the `T` separator) with a mandatory offset, fields in range
# (no leap second, no year 0000); the day-of-month check against the calendar follows.
_RFC3339 = re.compile(
    r"(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)


def _check_event_time(value: str) -> str:
    if _RFC3339.fullmatch(value) is None:
        raise PydanticCustomError(
            "rfc3339_datetime",
            "event_time must be an RFC 3339 date-time with a timezone offset, e.g. "
            "2024-05-01T12:00:00Z",
        )
    try:
        datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise PydanticCustomError(
            "rfc3339_datetime", "event_time is not a real date-time: {reason}", {"reason": str(exc)}
        ) from exc
    return value


SessionId = Annotated[
    StrictStr,
    # A blank id (only whitespace or invisible characters) fails the pattern; contract.errors
    # reports that as `string_blank`.
    Field(min_length=1, max_length=SESSION_ID_MAX_LENGTH, pattern=VISIBLE_CHARACTER),
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
Count = Annotated[int, JsonInteger(0, COUNT_MAX)]
Duration = Annotated[
    float | None,
    Seconds(DURATION_MAX, DURATION_UNKNOWN),
    Field(description="Seconds spent on pages of this kind; -1 or null when unknown."),
]
Rate = Annotated[StrictFloat, Field(ge=0.0, le=1.0)]
Code = Annotated[int, JsonInteger(1, CODE_MAX)]


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
    PageValues: Annotated[StrictFloat, Field(ge=0.0, le=PAGE_VALUE_MAX)] = Field(
        description="Mean Google Analytics page value of the pages visited."
    )
    SpecialDay: Rate = Field(description="Closeness to a special day such as Mother's Day, [0, 1].")
    Month: MonthName = Field(description="Month in the dataset's spelling (note 'June').")
    OperatingSystems: Code = Field(description="Operating-system code; unseen codes are valid.")
    Browser: Code = Field(description="Browser code; unseen codes are valid.")
    Region: Code = Field(description="Region code; unseen codes are valid.")
    TrafficType: Code = Field(description="Traffic-source code; unseen codes are valid.")
    VisitorType: VisitorTypeName = Field(description="Returning_Visitor, New_Visitor or Other.")
    Weekend: StrictBool = Field(description="Whether the session happened on a weekend.")

    @property
    def event_datetime(self) -> datetime | None:
        """`event_time` as an aware datetime (the original string is kept in `event_time`)."""
        if self.event_time is None:
            return None
        return datetime.fromisoformat(self.event_time.upper())


def session_event_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) producers validate against before they send."""
    schema = SessionEvent.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
