"""The contract's transformers obey scikit-learn's estimator contract.

No check is marked as an expected failure. `check_array_api_input` reports itself skipped unless
SCIPY_ARRAY_API is set: array-API input does not apply to these pandas-based transformers.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from contract.cleaning import SessionCleaner
from contract.features import SessionFeatures


@parametrize_with_checks(  # type: ignore[untyped-decorator]
    [
        SessionCleaner(),
        SessionCleaner(add_indicators=False),
        SessionFeatures(),
        SessionFeatures(use_page_values=False),
    ]
)
def test_sklearn_estimator_contract(
    estimator: BaseEstimator, check: Callable[[BaseEstimator], None]
) -> None:
    check(estimator)
