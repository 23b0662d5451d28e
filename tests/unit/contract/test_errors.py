"""ContractViolation carries field/value/rule; parse_event finds duplicate keys however written."""

from __future__ import annotations

import json
import pickle

import pytest
from pydantic import ValidationError

from contract.errors import (
    ROOT_FIELD,
    ContractError,
    ContractViolation,
    violations_from_validation_error,
)
from contract.schema import SessionEvent
from contract.validation import parse_event


def test_violation_message_names_field_value_and_rule() -> None:
    violation = ContractViolation("BounceRates", 1.5, "less_than_equal", "must be <= 1")
    assert isinstance(violation, ContractError)
    assert (violation.field, violation.value, violation.rule) == (
        "BounceRates",
        1.5,
        "less_than_equal",
    )
    assert str(violation) == "BounceRates: must be <= 1 [rule=less_than_equal, value=1.5]"
    assert violation.violations == (violation,)


def test_violation_message_truncates_huge_values() -> None:
    violation = ContractViolation(ROOT_FIELD, "x" * 10_000, "invalid_json")
    assert len(str(violation)) < 200


def test_violation_survives_pickling() -> None:
    first = ContractViolation("Month", "Jun", "literal_error")
    second = ContractViolation("Weekend", "true", "bool_type")
    violation = ContractViolation("Month", "Jun", "literal_error", violations=(first, second))
    restored = pickle.loads(pickle.dumps(violation))
    assert (restored.field, restored.value, restored.rule) == ("Month", "Jun", "literal_error")
    assert [v.rule for v in restored.violations] == ["literal_error", "bool_type"]


def test_all_violations_are_attached_first_one_raised(valid_event: dict[str, object]) -> None:
    bad = {**valid_event, "Month": "Jun", "Weekend": "yes", "Revenue": True}
    with pytest.raises(ContractViolation) as caught:
        parse_event(json.dumps(bad))
    rules = {(v.field, v.rule) for v in caught.value.violations}
    assert rules == {
        ("Month", "literal_error"),
        ("Weekend", "bool_type"),
        ("Revenue", "label_not_allowed"),
    }
    assert (caught.value.field, caught.value.rule) == (
        caught.value.violations[0].field,
        caught.value.violations[0].rule,
    )


def test_missing_field_has_no_value(valid_event: dict[str, object]) -> None:
    del valid_event["Weekend"]
    with pytest.raises(ValidationError) as caught:
        SessionEvent.model_validate(valid_event)
    [violation] = violations_from_validation_error(caught.value)
    assert (violation.field, violation.rule, violation.value) == ("Weekend", "missing", None)


def _with_member(valid_event: dict[str, object], member: str) -> str:
    return json.dumps(valid_event)[:-1] + ", " + member + "}"


@pytest.mark.parametrize(
    ("member", "field"),
    [
        ('"Region": 3', "Region"),  # same key, valid value: pydantic alone would keep the last
        ('"Region" : 3', "Region"),  # whitespace before the colon
        ('"Region"\n:\t3', "Region"),
        ('"\\u0052egion": 3', "Region"),  # the same key spelled with an escape
        ('"session_id": "other"', "session_id"),
        ('"event_time": null', "event_time"),
    ],
)
def test_duplicate_keys_are_rejected(
    member: str, field: str, valid_event: dict[str, object]
) -> None:
    payload = _with_member(valid_event, member)
    for raw in (payload, payload.encode()):
        with pytest.raises(ContractViolation) as caught:
            parse_event(raw)
        assert (caught.value.field, caught.value.rule) == (field, "duplicate_key")


@pytest.mark.parametrize(
    "session_id",
    ['quote " inside', 'ends with quote"', '":"', "colon: inside", "\\", "ünïcødé 🛒"],
)
def test_strings_with_quotes_are_not_mistaken_for_duplicates(
    session_id: str, valid_event: dict[str, object]
) -> None:
    valid_event["session_id"] = session_id
    for separators in ((",", ":"), (", ", ": "), (" , ", " : ")):
        raw = json.dumps(valid_event, separators=separators, ensure_ascii=False)
        assert parse_event(raw).session_id == session_id
        assert parse_event(raw.encode()).session_id == session_id


def test_pretty_printed_event_is_accepted(valid_event: dict[str, object]) -> None:
    assert parse_event(json.dumps(valid_event, indent=4)).Region == 1
