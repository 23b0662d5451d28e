"""Field types of the contract, each with one definition that both sides read.

Every type here is a pydantic-core schema (validated in Rust: no Python call per field on the
hot path) paired with the JSON Schema that states the same rule, so the consumer and a producer's
JSON Schema validator accept the same values:

- `JsonInteger(ge, le)`: JSON's integer, i.e. any number with a zero fractional part (`3` and
  `3.0`, not `3.5`, `"3"` or `true`), within `[ge, le]`; the value is a Python `int`.
- `Seconds(le, unknown)`: seconds in `[0, le]`, the `unknown` sentinel, or null.
- `VISIBLE_CHARACTER`: a regex that finds one visible character, so a string made only of
  whitespace, control, format (zero-width) or filler characters does not match it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import ErrorDetails, core_schema

DURATION_RANGE_RULE: Final[str] = "duration_range"

# Characters that draw nothing: Unicode whitespace, control and format characters (zero-width
# space and joiners, bidi marks, the BOM, tags, ...) and the fillers and selectors that render
# as blank although Unicode files them elsewhere.
_BLANK_CATEGORIES: Final[frozenset[str]] = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})
_BLANK_EXTRAS: Final[tuple[tuple[int, int], ...]] = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x2800, 0x2800),  # braille pattern blank
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


# Planes 0-1 and 14 hold every character of those categories (planes 2-3 are ideographs,
# 15-16 private use).
_SCANNED: Final[tuple[range, ...]] = (range(0x20000), range(0xE0000, 0xE1000))


def _blank_code_points() -> list[int]:
    points = {
        cp
        for plane in _SCANNED
        for cp in plane
        if unicodedata.category(chr(cp)) in _BLANK_CATEGORIES or chr(cp).isspace()
    }
    for first, last in _BLANK_EXTRAS:
        points.update(range(first, last + 1))
    return sorted(points)


def _character_class(points: list[int]) -> str:
    """`[...]` body of sorted code points, as ranges of literal characters."""
    parts: list[str] = []
    start = previous = points[0]
    for cp in [*points[1:], -1]:
        if cp == previous + 1:
            previous = cp
            continue
        parts.append(chr(start) if start == previous else f"{chr(start)}-{chr(previous)}")
        start = previous = cp
    return "".join(parts)


VISIBLE_CHARACTER: Final[str] = "[^" + _character_class(_blank_code_points()) + "]"
"""Matches one character that is not blank; the same pattern in pydantic (Rust regex), Python's
`re`, and ECMA 262 (the JSON Schema `pattern`), because it is only literal characters."""


INTEGER_BRANCHES: Final[tuple[str, str]] = ("integer", "integral-number")
"""The labels of `JsonInteger`'s two branches, the second part of an error's `loc`."""
_RANGE_RULES: Final[frozenset[str]] = frozenset({"greater_than_equal", "less_than_equal"})


def integer_rule(branch_errors: Sequence[ErrorDetails]) -> tuple[str, str]:
    """The `(rule, message)` of a `JsonInteger` field from the errors of its branches.

    A number out of range (in either branch) is a range error; anything else is `int_type`.
    """
    for error in branch_errors:
        if error["type"] in _RANGE_RULES:
            return error["type"], error["msg"]
    return "int_type", "Input should be a valid integer (a number with no fractional part)"


@dataclass(frozen=True)
class JsonInteger:
    """`Annotated[int, JsonInteger(ge, le)]`: an integer with JSON's semantics, within `[ge, le]`.

    A union tried left to right, all in pydantic-core: a JSON integer within the bounds (the
    common case, as cheap as a strict int), else a finite JSON number with a zero fractional part,
    bounded as sent (so `1e30` is out of range, not a wrong type) and made an exact `int` (the
    bounds are within 2**53, so the float is exact). pydantic reports a failure once per branch,
    at `(field, branch)`; `integer_rule` folds those into the field's one rule.
    """

    ge: int
    le: int

    def __post_init__(self) -> None:
        if not -(2**53) <= self.ge <= self.le <= 2**53:
            raise ValueError("JsonInteger bounds must be exact as float64")

    def __get_pydantic_core_schema__(
        self, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.union_schema(
            [
                (core_schema.int_schema(strict=True, ge=self.ge, le=self.le), INTEGER_BRANCHES[0]),
                (
                    core_schema.chain_schema(
                        [
                            core_schema.float_schema(
                                strict=True, allow_inf_nan=False, multiple_of=1
                            ),
                            core_schema.float_schema(strict=False, ge=self.ge, le=self.le),
                            core_schema.int_schema(strict=False),
                        ]
                    ),
                    INTEGER_BRANCHES[1],
                ),
            ],
            mode="left_to_right",
        )

    def __get_pydantic_json_schema__(
        self, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "integer", "minimum": self.ge, "maximum": self.le}


@dataclass(frozen=True)
class Seconds:
    """`Annotated[float | None, Seconds(le, unknown)]`: seconds in `[0, le]`, `unknown` or null.

    An `int` is accepted and becomes a `float`. A wrong type is `float_type`, NaN/Infinity
    `finite_number`, above `le` `less_than_equal`, and a negative number other than `unknown`
    is `duration_range`.
    """

    le: float
    unknown: int

    def __get_pydantic_core_schema__(
        self, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        message = f"a duration is in [0, {self.le:g}] seconds, or {self.unknown} (null) if unknown"
        seconds = core_schema.chain_schema(
            [
                core_schema.float_schema(strict=True, allow_inf_nan=False, le=self.le),
                core_schema.union_schema(
                    [
                        core_schema.float_schema(strict=True, ge=0),
                        core_schema.float_schema(strict=True, ge=self.unknown, le=self.unknown),
                    ],
                    mode="left_to_right",
                    custom_error_type=DURATION_RANGE_RULE,
                    custom_error_message=message,
                ),
            ]
        )
        return core_schema.nullable_schema(seconds)

    def __get_pydantic_json_schema__(
        self, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": self.le},
                {"const": self.unknown},
                {"type": "null"},
            ]
        }
