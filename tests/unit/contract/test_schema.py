"""SessionEvent accepts the data's own rows and rejects a catalogue of bad events, by field/rule."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from pydantic import ValidationError

from contract.__main__ import main, schema_text
from contract.errors import ContractViolation, violations_from_validation_error
from contract.frame import dataset_row_to_event_dict
from contract.schema import (
    CONTRACT_VERSION,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    SessionEvent,
    session_event_json_schema,
)
from contract.validation import parse_event

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "contract" / "session_event.schema.json"
MISSING = object()


@dataclass(frozen=True)
class Bad:
    """One bad event: a change to the valid event, or raw JSON text; the field and rule expected."""

    case: str
    field: str
    rule: str
    change: dict[str, object] | None = None
    literal: str | None = None  # JSON text to put as the value of `field`
    raw: str | None = None  # whole payload, or a member appended to the valid event
    schema_rejects: bool = True  # whether a JSON Schema validator can see the problem too


CATALOGUE = [
    Bad("no session_id", "session_id", "missing", {"session_id": MISSING}),
    Bad("empty session_id", "session_id", "string_too_short", {"session_id": ""}),
    Bad("blank session_id", "session_id", "string_blank", {"session_id": " \t "}),
    Bad(
        "invisible session_id",
        "session_id",
        "string_blank",
        {"session_id": "\u200b\u200d\ufeff\u2060\u00ad\u3164"},
    ),
    Bad("long session_id", "session_id", "string_too_long", {"session_id": "s" * 129}),
    Bad("numeric session_id", "session_id", "string_type", {"session_id": 42}),
    Bad(
        "naive event_time", "event_time", "rfc3339_datetime", {"event_time": "2024-05-01T12:00:00"}
    ),
    Bad("date-only event_time", "event_time", "rfc3339_datetime", {"event_time": "2024-05-01"}),
    Bad(
        "space-separated event_time",
        "event_time",
        "rfc3339_datetime",
        {"event_time": "2024-05-01 12:00:00Z"},
    ),
    Bad("leap second", "event_time", "rfc3339_datetime", {"event_time": "2024-05-01T12:00:60Z"}),
    Bad(
        "impossible date",
        "event_time",
        "rfc3339_datetime",
        {"event_time": "2024-02-30T12:00:00Z"},
    ),
    Bad("epoch event_time", "event_time", "string_type", {"event_time": 1714564800}),
    Bad("negative count", "Administrative", "greater_than_equal", {"Administrative": -1}),
    Bad("count as string", "Informational", "int_type", {"Informational": "3"}),
    Bad("fractional count", "ProductRelated", "int_type", {"ProductRelated": 3.5}),
    Bad("count too large", "ProductRelated", "less_than_equal", {"ProductRelated": 2**62}),
    Bad("count as 1e30", "Administrative", "less_than_equal", {"Administrative": 1e30}),
    Bad("count as bool", "ProductRelated", "int_type", {"ProductRelated": True}),
    Bad("count missing", "Administrative", "missing", {"Administrative": MISSING}),
    Bad(
        "duration -2", "Administrative_Duration", "duration_range", {"Administrative_Duration": -2}
    ),
    Bad(
        "duration -0.5",
        "Informational_Duration",
        "duration_range",
        {"Informational_Duration": -0.5},
    ),
    Bad(
        "duration as string",
        "ProductRelated_Duration",
        "float_type",
        {"ProductRelated_Duration": "12"},
    ),
    Bad(
        "duration 1e308",
        "ProductRelated_Duration",
        "less_than_equal",
        {"ProductRelated_Duration": 1e308},
    ),
    Bad("bounce rate > 1", "BounceRates", "less_than_equal", {"BounceRates": 1.5}),
    Bad("exit rate < 0", "ExitRates", "greater_than_equal", {"ExitRates": -0.1}),
    Bad("PageValues negative", "PageValues", "greater_than_equal", {"PageValues": -0.5}),
    Bad("PageValues too large", "PageValues", "less_than_equal", {"PageValues": 1e7}),
    Bad("PageValues null", "PageValues", "float_type", {"PageValues": None}),
    Bad("PageValues as bool", "PageValues", "float_type", {"PageValues": True}),
    Bad("SpecialDay 2", "SpecialDay", "less_than_equal", {"SpecialDay": 2}),
    Bad("month abbreviation Jun", "Month", "literal_error", {"Month": "Jun"}),
    Bad("month lower case", "Month", "literal_error", {"Month": "nov"}),
    Bad("month number", "Month", "literal_error", {"Month": 11}),
    Bad("code zero", "OperatingSystems", "greater_than_equal", {"OperatingSystems": 0}),
    Bad("code as bool", "Browser", "int_type", {"Browser": True}),
    Bad("code as float", "Region", "int_type", {"Region": 2.5}),
    Bad("code 10**30", "Region", "less_than_equal", {"Region": 10**30}),
    Bad("code as string", "Browser", "int_type", {"Browser": "2"}),
    Bad("code missing", "TrafficType", "missing", {"TrafficType": MISSING}),
    Bad("visitor type lower case", "VisitorType", "literal_error", {"VisitorType": "new_visitor"}),
    Bad("Weekend as string", "Weekend", "bool_type", {"Weekend": "true"}),
    Bad("Weekend as 1", "Weekend", "bool_type", {"Weekend": 1}),
    Bad("label present", LABEL_COLUMN, "label_not_allowed", {LABEL_COLUMN: False}),
    Bad("unknown field", "user_agent", "extra_forbidden", {"user_agent": "Mozilla/5.0"}),
    # Not expressible as a Python dict or in JSON Schema: raw text.
    Bad("NaN literal", "BounceRates", "finite_number", literal="NaN", schema_rejects=False),
    Bad(
        "Infinity literal", "PageValues", "finite_number", literal="Infinity", schema_rejects=False
    ),
    Bad(
        "-Infinity literal",
        "ProductRelated_Duration",
        "finite_number",
        literal="-Infinity",
        schema_rejects=False,
    ),
    Bad("duplicate key", "Weekend", "duplicate_key", raw='"Weekend": true', schema_rejects=False),
    Bad("not JSON", "<root>", "invalid_json", raw="{'session_id': 'x'}", schema_rejects=False),
    Bad(
        "truncated JSON", "<root>", "invalid_json", raw='{"session_id": "x", ', schema_rejects=False
    ),
    Bad("JSON array", "<root>", "not_an_object", raw="[1, 2]"),
    Bad("JSON string", "<root>", "not_an_object", raw='"session"'),
]


def bad_payload(bad: Bad, valid_event: dict[str, object]) -> str:
    """The JSON text of a bad event."""
    if bad.change is not None:
        event = dict(valid_event)
        for key, value in bad.change.items():
            if value is MISSING:
                del event[key]
            else:
                event[key] = value
        return json.dumps(event)
    if bad.literal is not None:
        placeholder = "__literal__"
        return json.dumps({**valid_event, bad.field: placeholder}).replace(
            f'"{placeholder}"', bad.literal
        )
    assert bad.raw is not None
    if bad.raw.startswith('"') and ":" in bad.raw:  # a member to add at the end of the object
        return json.dumps(valid_event)[:-1] + ", " + bad.raw + "}"
    return bad.raw


def test_catalogue_is_big_enough() -> None:
    assert len(CATALOGUE) >= 20
    assert len({bad.case for bad in CATALOGUE}) == len(CATALOGUE)


def test_valid_event_is_accepted(valid_event: dict[str, object]) -> None:
    event = parse_event(json.dumps(valid_event).encode())
    assert event.session_id == "session-0001"
    assert event.event_time == "2024-11-29T18:30:05.250+01:00"  # echoed back exactly
    assert event.event_datetime == datetime(2024, 11, 29, 17, 30, 5, 250000, tzinfo=UTC)
    assert event.Informational_Duration == 0.0
    assert isinstance(event.Informational_Duration, float)  # ints are fine for numbers


@pytest.mark.parametrize("bad", CATALOGUE, ids=[bad.case for bad in CATALOGUE])
def test_bad_event_is_rejected_naming_field_and_rule(
    bad: Bad, valid_event: dict[str, object]
) -> None:
    payload = bad_payload(bad, valid_event)
    for raw in (payload, payload.encode()):
        with pytest.raises(ContractViolation) as caught:
            parse_event(raw)
        violation = caught.value
        assert (violation.field, violation.rule) == (bad.field, bad.rule)
        assert violation.violations[0].rule == bad.rule
        assert bad.field in str(violation)
        assert f"rule={bad.rule}" in str(violation)


@pytest.mark.parametrize(
    "bad", [bad for bad in CATALOGUE if bad.change is not None], ids=lambda bad: bad.case
)
def test_json_schema_agrees_with_the_model(bad: Bad, valid_event: dict[str, object]) -> None:
    """Producers validating against the exported schema (format checks on) see the same problems,
    where JSON Schema can express them."""
    validator = jsonschema.Draft202012Validator(
        session_event_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert validator.is_valid(valid_event)
    payload = json.loads(bad_payload(bad, valid_event))
    assert validator.is_valid(payload) is not bad.schema_rejects


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("BounceRates", float("nan")),
        ("PageValues", float("inf")),
        ("Administrative_Duration", float("-inf")),
    ],
)
def test_python_nan_and_infinity_are_rejected(
    field: str, value: float, valid_event: dict[str, object]
) -> None:
    with pytest.raises(ValidationError) as caught:
        SessionEvent.model_validate({**valid_event, field: value})
    [violation] = violations_from_validation_error(caught.value)
    assert (violation.field, violation.rule) == (field, "finite_number")


def test_unknowns_are_accepted(valid_event: dict[str, object]) -> None:
    event = SessionEvent.model_validate(
        {
            **valid_event,
            "event_time": None,
            "Administrative": None,
            "Administrative_Duration": -1,
            "Informational_Duration": None,
            "BounceRates": None,
            "Month": "Jan",  # never seen in training, still a valid month
        }
    )
    assert event.Administrative is None
    assert event.Administrative_Duration == -1.0
    assert event.event_datetime is None


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2024-05-01T12:00:00Z", timedelta(0)),
        ("2024-05-01t12:00:00.5z", timedelta(0)),
        ("2024-05-01T12:00:00-05:30", -timedelta(hours=5, minutes=30)),
    ],
)
def test_event_time_accepts_rfc3339(
    text: str, offset: timedelta, valid_event: dict[str, object]
) -> None:
    event = SessionEvent.model_validate({**valid_event, "event_time": text})
    assert event.event_time == text
    assert event.event_datetime is not None
    assert event.event_datetime.utcoffset() == timezone(offset).utcoffset(None)


def test_missing_event_time_is_allowed(valid_event: dict[str, object]) -> None:
    del valid_event["event_time"]
    assert parse_event(json.dumps(valid_event)).event_time is None


def test_every_dataset_row_is_a_valid_event(dataset: pd.DataFrame) -> None:
    rows = dataset.to_dict("records")
    validator = jsonschema.Draft202012Validator(session_event_json_schema())
    for i, row in enumerate(rows):
        event_dict = dataset_row_to_event_dict(row, session_id=f"row-{i}")
        assert LABEL_COLUMN not in event_dict
        event = SessionEvent.model_validate(event_dict)
        assert event.session_id == f"row-{i}"
        # Every 7th row through the JSON path and the producers' schema too (keeps the test fast).
        if i % 7 == 0:
            assert parse_event(json.dumps(event_dict)) == event
            assert validator.is_valid(event_dict), i
    assert len(rows) == 12_330


def test_schema_export_has_id_title_version_and_every_field() -> None:
    schema = session_event_json_schema()
    assert schema["$id"].endswith(CONTRACT_VERSION)
    assert schema["title"] == "SessionEvent"
    assert schema["version"] == CONTRACT_VERSION
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"session_id", "event_time", *FEATURE_COLUMNS}
    assert set(schema["required"]) == {"session_id", *FEATURE_COLUMNS}
    jsonschema.Draft202012Validator.check_schema(schema)


def test_committed_schema_equals_a_fresh_export() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "contract/session_event.schema.json is stale: run `python -m contract schema --out "
        "contract/session_event.schema.json`"
    )


def test_cli_prints_and_writes_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed)["version"] == CONTRACT_VERSION
    out = tmp_path / "nested" / "schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == printed
