"""The forest as arrays gives the forest's own probabilities, bit for bit, also at the edges
where the trees decide."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from scoring.forest import ROWS_PER_CHUNK, ForestPredictor


def _data(seed: int, rows: int = 600, columns: int = 6) -> tuple[npt.NDArray[np.float64], ...]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, columns))
    X[:, 0] = np.round(X[:, 0] * 3)  # ties: many rows share a threshold's neighbours
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return X, y


def _edge_rows(forest: RandomForestClassifier | ExtraTreesClassifier) -> npt.NDArray[np.float64]:
    """Rows whose values sit exactly on, and one float32 step either side of, the thresholds."""
    thresholds = np.concatenate([tree.tree_.threshold for tree in forest.estimators_])
    features = np.concatenate([tree.tree_.feature for tree in forest.estimators_])
    split = features >= 0
    values = thresholds[split]
    as32 = values.astype(np.float32)
    candidates = np.concatenate(
        [
            values,
            as32.astype(np.float64),
            np.nextafter(as32, np.float32(np.inf)).astype(np.float64),
            np.nextafter(as32, np.float32(-np.inf)).astype(np.float64),
        ]
    )
    rng = np.random.default_rng(7)
    rows = rng.choice(candidates, size=(len(candidates), forest.n_features_in_))
    return np.asarray(rows, dtype=np.float64)


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("rows", [1, 3, ROWS_PER_CHUNK, ROWS_PER_CHUNK + 1, 1000])
def test_probabilities_equal_the_forest(
    kind: type[RandomForestClassifier | ExtraTreesClassifier], rows: int
) -> None:
    X, y = _data(1)
    forest = kind(n_estimators=25, max_depth=7, random_state=0).fit(X, y)
    predictor = ForestPredictor.of(forest)
    assert predictor is not None
    probe = np.random.default_rng(2).normal(size=(rows, X.shape[1]))
    expected = forest.predict_proba(probe)[:, 1]
    np.testing.assert_array_equal(predictor.predict(probe), expected)


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_values_on_the_thresholds_go_where_the_trees_send_them(
    kind: type[RandomForestClassifier | ExtraTreesClassifier],
) -> None:
    X, y = _data(3)
    forest = kind(n_estimators=15, random_state=0).fit(X, y)  # unbounded depth
    predictor = ForestPredictor.of(forest)
    assert predictor is not None
    probe = _edge_rows(forest)
    expected = forest.predict_proba(probe)[:, 1]
    np.testing.assert_array_equal(predictor.predict(probe), expected)


def test_a_missing_or_unrepresentable_value_is_left_to_the_forest() -> None:
    X, y = _data(4)
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    predictor = ForestPredictor.of(forest)
    assert predictor is not None
    for value in (np.nan, np.inf, 1e300):  # 1e300: finite in float64, infinite in float32
        rows = np.zeros((3, X.shape[1]))
        rows[1, 2] = value
        assert predictor.predict(rows) is None


def test_other_estimators_are_not_forests() -> None:
    X, y = _data(6)
    assert ForestPredictor.of(LogisticRegression().fit(X, y)) is None
    three_classes = np.asarray(y) + (X[:, 3] > 1)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, three_classes)
    assert ForestPredictor.of(forest) is None
