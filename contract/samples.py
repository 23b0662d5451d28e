"""Valid events drawn from the contract's own value space, edges included.

Whoever needs events that the contract accepts, without any data (the consumer's start-up check
of its fast scoring path, tests), takes them from here. Each field is drawn from its edge
values (null where allowed, the `-1` duration sentinel, 0, each number's upper bound, rates at
0 and 1, every month and visitor type, codes seen and unseen) or from a plausible value inside
its range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from contract.schema import (
    CODE_COLUMNS,
    CODE_MAX,
    COUNT_COLUMNS,
    COUNT_MAX,
    DURATION_COLUMNS,
    DURATION_MAX,
    DURATION_UNKNOWN,
    MONTHS,
    PAGE_VALUE_MAX,
    RATE_COLUMNS,
    VISITOR_TYPES,
    SessionEvent,
)

Draw = Callable[[np.random.Generator], Any]

EXAMPLE_EVENT: Final[dict[str, Any]] = {
    "session_id": "s-1",
    "event_time": "2026-11-26T10:00:00Z",
    "Administrative": 2,
    "Administrative_Duration": 30.5,
    "Informational": 0,
    "Informational_Duration": 0.0,
    "ProductRelated": 12,
    "ProductRelated_Duration": 400.0,
    "BounceRates": 0.01,
    "ExitRates": 0.02,
    "PageValues": 5.5,
    "SpecialDay": 0.0,
    "Month": "Nov",
    "OperatingSystems": 2,
    "Browser": 2,
    "Region": 1,
    "TrafficType": 2,
    "VisitorType": "Returning_Visitor",
    "Weekend": False,
}
"""One typical valid event, as JSON-ready values (copy it before changing it)."""


def _one_of(*options: Any) -> Draw:
    return lambda rng: options[int(rng.integers(0, len(options)))]


def _either(*draws: Draw) -> Draw:
    return lambda rng: draws[int(rng.integers(0, len(draws)))](rng)


def _count(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 800))


def _seconds(rng: np.random.Generator) -> float:
    return float(rng.exponential(500.0))


def _share(rng: np.random.Generator) -> float:
    return float(rng.random())


def _page_value(rng: np.random.Generator) -> float:
    return float(rng.exponential(30.0))


def _code(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 40))


FIELD_DRAWS: Final[dict[str, Draw]] = {
    **{column: _either(_one_of(None, 0, 1, COUNT_MAX), _count) for column in COUNT_COLUMNS},
    **{
        column: _either(_one_of(None, DURATION_UNKNOWN, 0.0, DURATION_MAX), _seconds)
        for column in DURATION_COLUMNS
    },
    **{column: _either(_one_of(None, 0.0, 1.0), _share) for column in RATE_COLUMNS},
    "PageValues": _either(_one_of(0.0, PAGE_VALUE_MAX), _page_value),
    "SpecialDay": _either(_one_of(0.0, 1.0), _share),
    "Month": _one_of(*MONTHS),
    **{column: _either(_one_of(1, 2, CODE_MAX), _code) for column in CODE_COLUMNS},
    "VisitorType": _one_of(*VISITOR_TYPES),
    "Weekend": _one_of(True, False),
}
"""How each feature's values are drawn: edge values or plausible ones, about half each."""


def edge_event_dicts(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` events as JSON-ready dicts, deterministic for `(n, seed)`."""
    rng = np.random.default_rng(seed)
    return [
        {
            "session_id": f"edge-{seed}-{i}",
            **({"event_time": "2026-11-26T10:00:00Z"} if i % 2 else {}),
            **{column: draw(rng) for column, draw in FIELD_DRAWS.items()},
        }
        for i in range(n)
    ]


def edge_events(n: int, seed: int) -> list[SessionEvent]:
    """`n` validated events spread over the contract's value space."""
    return [SessionEvent.model_validate(event) for event in edge_event_dicts(n, seed)]
