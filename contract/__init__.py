"""The single source of truth for training and serving: the event, its errors, the pipeline.

Import the submodules (`contract.schema`, `contract.errors`, `contract.validation`,
`contract.frame`, `contract.cleaning`, `contract.features`, `contract.pipeline`); this package
module only re-exports the most used names.
"""

from contract.errors import ContractError, ContractViolation
from contract.schema import CONTRACT_VERSION, FEATURE_COLUMNS, LABEL_COLUMN, SessionEvent
from contract.validation import parse_event

__all__ = [
    "CONTRACT_VERSION",
    "FEATURE_COLUMNS",
    "LABEL_COLUMN",
    "ContractError",
    "ContractViolation",
    "SessionEvent",
    "parse_event",
]
