"""The outcome contract: strict like the session event, schema committed and exported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from contract.__main__ import main, schema_text
from contract.outcome import (
    OUTCOME_CONTRACT_VERSION,
    outcome_json,
    parse_outcome,
    session_outcome_json_schema,
)

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "contract" / "session_outcome.schema.json"
GOOD = {
    "contract_version": "1.0.0",
    "session_id": "s-1",
    "purchased": True,
    "outcome_time": "2026-12-03T18:00:00Z",
}


def test_a_valid_outcome_parses_and_round_trips() -> None:
    outcome = parse_outcome(json.dumps(GOOD).encode())
    assert outcome.purchased is True
    assert outcome.outcome_datetime == datetime(2026, 12, 3, 18, tzinfo=UTC)
    again = parse_outcome(outcome_json("s-1", True, datetime(2026, 12, 3, 18, tzinfo=UTC)))
    assert again == outcome


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"purchased": "true"}, "bool_type"),
        ({"purchased": 1}, "bool_type"),
        ({"outcome_time": "2026-12-03 18:00:00"}, "rfc3339_datetime"),
        ({"outcome_time": "2026-12-03T18:00:00"}, "rfc3339_datetime"),
        ({"session_id": "   "}, "string_pattern_mismatch"),
        ({"contract_version": "2.0.0"}, "string_pattern_mismatch"),
        ({"Revenue": True}, "extra_forbidden"),
    ],
)
def test_strict_like_the_session_event(change: dict[str, object], rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_outcome(json.dumps({**GOOD, **change}).encode())
    assert caught.value.errors()[0]["type"] == rule


def test_a_missing_field_is_refused() -> None:
    for name in GOOD:
        with pytest.raises(ValidationError):
            parse_outcome(json.dumps({k: v for k, v in GOOD.items() if k != name}).encode())


def test_schema_validates_what_the_model_accepts() -> None:
    schema = session_outcome_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["version"] == OUTCOME_CONTRACT_VERSION
    jsonschema.validate(GOOD, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**GOOD, "extra": 1}, schema)


def test_committed_schema_equals_a_fresh_export(capsys: pytest.CaptureFixture[str]) -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text("outcome-schema"), (
        "contract/session_outcome.schema.json is stale: run `python -m contract outcome-schema "
        "--out contract/session_outcome.schema.json`"
    )
    assert main(["outcome-schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text(encoding="utf-8")
