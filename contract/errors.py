"""Typed errors of the contract: a rejected event names its field, its value and the rule it broke.

`ContractError` is the root of every error this package raises. `ContractViolation` is one broken
rule; the consumer copies `rule`, `field` and `str(exc)` into dead-letter headers.

Rule names are pydantic's error types (`missing`, `int_type`, `greater_than_equal`,
`literal_error`, `finite_number`, `extra_forbidden`, ...) plus our own:
`label_not_allowed`, `invalid_json`, `not_an_object`, `duplicate_key`, `string_blank`,
`rfc3339_datetime`, `duration_range`. The event parser that raises them is `contract.validation`.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from contract.fields import INTEGER_BRANCHES, integer_rule
from contract.schema import LABEL_COLUMN

ROOT_FIELD = "<root>"
"""`field` of a violation that concerns the whole payload rather than one field."""

_MAX_VALUE_REPR = 120

# pydantic error types renamed to the contract's own rule names.
# The only pattern of the contract is session_id's "one visible character" (contract.fields).
_BLANK = ("string_blank", "session_id must contain a visible character, not only blank ones")
_FIELD_RULES = {("string_pattern_mismatch", "session_id"): _BLANK}
_ROOT_RULES = {
    "json_invalid": "invalid_json",
    "json_type": "invalid_json",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
    "dict_type": "not_an_object",
}


class ContractError(Exception):
    """Root of the errors raised by `contract`."""


class ContractViolation(ContractError):  # noqa: N818 (the name is the public interface)
    """An event broke a rule of the contract.

    `violations` holds every violation found in the same event (this one first), so a caller can
    report them all while `field`/`rule` give the first.
    """

    def __init__(
        self,
        field: str,
        value: object,
        rule: str,
        detail: str | None = None,
        violations: Sequence[ContractViolation] = (),
    ) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        self.detail = detail or rule
        self.violations: tuple[ContractViolation, ...] = tuple(violations) or (self,)
        value_repr = _bounded_repr(value)
        if len(value_repr) > _MAX_VALUE_REPR:
            value_repr = value_repr[: _MAX_VALUE_REPR - 3] + "..."
        super().__init__(f"{field}: {self.detail} [rule={rule}, value={value_repr}]")

    def __reduce__(self) -> tuple[object, ...]:
        # `violations` holds `self` when it stands alone; pass it on only when it does not.
        others = () if self.violations == (self,) else self.violations
        return (type(self), (self.field, self.value, self.rule, self.detail, others))


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 4, 4, 4


def _bounded_repr(value: object) -> str:
    """repr() of a value, at a cost that does not grow with the value (a 60 kB string, a list
    nested 150 deep): strings are cut before repr, containers shown to a few items and levels."""
    if isinstance(value, str | bytes) and len(value) > _MAX_VALUE_REPR:
        value = value[:_MAX_VALUE_REPR]
    elif isinstance(value, list | dict | tuple):
        return _REPR.repr(value)
    return repr(value)


def _rule_for(error_type: str, field: str, message: str) -> tuple[str, str]:
    """The contract's rule name and message for one pydantic error."""
    if field == ROOT_FIELD and error_type in _ROOT_RULES:
        return _ROOT_RULES[error_type], message
    if error_type == "extra_forbidden" and field == LABEL_COLUMN:
        return "label_not_allowed", f"the label {LABEL_COLUMN!r} is never an input"
    return _FIELD_RULES.get((error_type, field), (error_type, message))


def violations_from_validation_error(exc: ValidationError) -> list[ContractViolation]:
    """Translate pydantic's errors into contract violations, one per field, in pydantic's order.

    An integer field (`contract.fields.JsonInteger`) fails once per branch of its union; those
    errors are folded into one violation of the field.
    """
    violations: list[ContractViolation] = []
    branches: dict[str, list[ErrorDetails]] = {}
    for error in exc.errors(include_url=False, include_context=False):
        loc = error["loc"]
        if len(loc) == 2 and loc[1] in INTEGER_BRANCHES:
            field = str(loc[0])
            if field not in branches:
                branches[field] = []
                violations.append(ContractViolation(field, error.get("input"), "int_type"))
            branches[field].append(error)
            continue
        field = ".".join(str(part) for part in loc) or ROOT_FIELD
        rule, detail = _rule_for(error["type"], field, error["msg"])
        # For `missing` pydantic's input is the whole object; the field's value is simply absent.
        value = None if error["type"] == "missing" else error.get("input")
        violations.append(ContractViolation(field, value, rule, detail))
    return [
        ContractViolation(v.field, v.value, *integer_rule(branches[v.field]))
        if v.field in branches
        else v
        for v in violations
    ]
