"""The single source of truth for training and serving: the event, its errors, the pipeline.

Import the submodules (`contract.schema`, `contract.errors`, `contract.frame`,
`contract.cleaning`, `contract.features`, `contract.pipeline`); this package module only
re-exports the most used names.
"""

from contract.errors import ContractError, ContractViolation, parse_event
from contract.schema import CONTRACT_VERSION, FEATURE_COLUMNS, LABEL_COLUMN, SessionEvent

__all__ = [
    "CONTRACT_VERSION",
    "FEATURE_COLUMNS",
    "LABEL_COLUMN",
    "ContractError",
    "ContractViolation",
    "SessionEvent",
    "parse_event",
]
