"""The fast scoring path reproduces the pipeline exactly, or is not used at all."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from xgboost import XGBClassifier

from contract.calibration import CalibratedClassifier, Method
from contract.frame import event_columns, events_to_frame
from contract.pipeline import Variant, build_pipeline
from contract.samples import edge_events
from contract.schema import FEATURE_COLUMNS
from scoring.fastpath import (
    FastPipeline,
    NotCompilable,
    XGBoostPredictor,
    compile_verified,
    verify,
)
from scoring.forest import ForestPredictor
from scoring.scorer import ModelInfo, Scorer
from training.synthetic import generate_sessions

INFO = ModelInfo(build_id="b", variant="full", git_sha="x", threshold=0.5)


def _estimators() -> dict[str, Any]:
    return {
        "logistic_regression": LogisticRegression(max_iter=2000),
        "random_forest": RandomForestClassifier(
            n_estimators=7, max_depth=6, n_jobs=1, random_state=0
        ),
        "xgboost": XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1, random_state=0),
    }


def _fitted(family: str, variant: Variant, rows: int = 800) -> Pipeline:
    data = generate_sessions(rows, seed=3)
    pipeline = build_pipeline(_estimators()[family], variant)
    return pipeline.fit(data[list(FEATURE_COLUMNS)], data["Revenue"])


@pytest.fixture(scope="module")
def fresh_events() -> list[Any]:
    """Valid events the verification never saw (another seed), edge values included."""
    return edge_events(1500, seed=99)


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest", "xgboost"])
@pytest.mark.parametrize("variant", ["full", "no_page_values"])
def test_compiled_scores_equal_the_pipeline(
    family: str, variant: Variant, fresh_events: list[Any]
) -> None:
    pipeline = _fitted(family, variant)
    scorer = Scorer(pipeline, INFO)
    assert scorer.path == "compiled", "a pipeline of the contract's shape must compile"
    for batch in (fresh_events[:1], fresh_events[:37], fresh_events):
        expected = pipeline.predict_proba(events_to_frame(batch))[:, 1]
        np.testing.assert_array_equal(scorer.score(batch), expected)


def test_encoded_matrix_is_bit_identical(fresh_events: list[Any]) -> None:
    pipeline = _fitted("logistic_regression", "full")
    compiled = FastPipeline(pipeline)
    frame = events_to_frame(fresh_events)
    expected = pipeline[:-1].transform(frame).to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(compiled.transform(event_columns(fresh_events)), expected)


def test_verification_catches_a_wrong_copy(fresh_events: list[Any]) -> None:
    pipeline = _fitted("logistic_regression", "full")
    compiled = FastPipeline(pipeline)
    scaler = compiled._scalers[0]
    assert scaler.mean is not None
    object.__setattr__(scaler, "mean", scaler.mean + 1e-9)  # a copy that drifted slightly
    with pytest.raises(NotCompilable, match="encoded matrix differs"):
        verify(pipeline, compiled, fresh_events[:200])


def test_unknown_pipeline_shape_falls_back_to_the_pipeline(fresh_events: list[Any]) -> None:
    fitted = _fitted("logistic_regression", "full")
    steps = [*fitted.steps[:-1], ("identity", FunctionTransformer()), fitted.steps[-1]]
    odd = Pipeline(steps)
    with pytest.raises(NotCompilable, match="unexpected steps"):
        compile_verified(odd, fresh_events[:50])
    scorer = Scorer(odd, INFO)
    assert scorer.path == "pipeline"
    expected = fitted.predict_proba(events_to_frame(fresh_events))[:, 1]
    np.testing.assert_array_equal(scorer.score(fresh_events), expected)


def test_runtime_failure_of_the_compiled_path_falls_back(fresh_events: list[Any]) -> None:
    pipeline = _fitted("random_forest", "full")
    scorer = Scorer(pipeline, INFO)
    assert scorer.path == "compiled"
    assert scorer._compiled is not None

    def broken(_: Any) -> Any:
        raise RuntimeError("boom")

    scorer._compiled.predict_proba = broken  # type: ignore[method-assign]
    expected = pipeline.predict_proba(events_to_frame(fresh_events[:20]))[:, 1]
    np.testing.assert_array_equal(scorer.score(fresh_events[:20]), expected)
    assert scorer.path == "pipeline"


def test_verification_sample_reaches_the_contract_edges() -> None:
    events = edge_events(400, seed=1)
    columns = event_columns(events)
    assert np.isnan(columns["Administrative"]).any()  # null counts
    assert (columns["ProductRelated_Duration"] == -1).any()  # the -1 sentinel
    assert {"Jan", "Apr"} & set(columns["Month"])  # months absent from the dataset
    assert (columns["TrafficType"] > 20).any()  # codes never seen in training
    assert (columns["BounceRates"] == 1.0).any()


def test_xgboost_is_scored_by_its_booster_within_its_best_iteration(
    fresh_events: list[Any],
) -> None:
    pipeline = _fitted("xgboost", "full")
    frame = events_to_frame(fresh_events)
    all_rounds = pipeline.predict_proba(frame)[:, 1]
    # What early stopping leaves behind: the booster's best_iteration attribute.
    pipeline[-1].get_booster().set_attr(best_iteration="2")
    expected = pipeline.predict_proba(frame)[:, 1]
    assert not np.array_equal(expected, all_rounds)  # the range changes the scores
    compiled, _ = compile_verified(pipeline, fresh_events[:300])
    # The booster's inplace_predict, not the wrapper.
    assert isinstance(compiled.predictor, XGBoostPredictor)
    assert compiled.predictor.iteration_range == (0, 3)
    np.testing.assert_array_equal(compiled.predict_proba(event_columns(fresh_events)), expected)


def test_xgboost_other_objectives_use_the_estimator(fresh_events: list[Any]) -> None:
    data = generate_sessions(800, seed=3)
    estimator = XGBClassifier(
        n_estimators=5, max_depth=2, n_jobs=1, random_state=0, objective="binary:hinge"
    )
    pipeline = build_pipeline(estimator, "full").fit(data[list(FEATURE_COLUMNS)], data["Revenue"])
    compiled = FastPipeline(pipeline)
    assert compiled.predictor is None
    expected = pipeline.predict_proba(events_to_frame(fresh_events[:100]))[:, 1]
    np.testing.assert_array_equal(
        compiled.predict_proba(event_columns(fresh_events[:100])), expected
    )


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize(
    ("inner", "predictor"),
    [
        (XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1, random_state=0), XGBoostPredictor),
        (RandomForestClassifier(n_estimators=12, max_depth=5, random_state=0), ForestPredictor),
    ],
    ids=["xgboost", "random_forest"],
)
def test_a_calibrated_build_is_scored_by_its_inner_model_as_arrays_then_its_map(
    method: Method, inner: Any, predictor: type[Any], fresh_events: list[Any]
) -> None:
    data = generate_sessions(800, seed=3)
    model = CalibratedClassifier(inner, method=method, cv=3)
    pipeline = build_pipeline(model, "full").fit(data[list(FEATURE_COLUMNS)], data["Revenue"])
    compiled, _ = compile_verified(pipeline, fresh_events[:300])
    # The inner model as arrays, not the wrapper's predict_proba.
    assert isinstance(compiled.predictor, predictor)
    expected = pipeline.predict_proba(events_to_frame(fresh_events))[:, 1]
    np.testing.assert_allclose(
        compiled.predict_proba(event_columns(fresh_events)), expected, rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("calibrated", [False, True])
def test_a_forest_is_scored_as_arrays_exactly_as_its_predict_proba(
    calibrated: bool, fresh_events: list[Any]
) -> None:
    data = generate_sessions(800, seed=3)
    forest = RandomForestClassifier(n_estimators=9, max_depth=5, n_jobs=1, random_state=0)
    model = CalibratedClassifier(forest, method="isotonic", cv=3) if calibrated else forest
    pipeline = build_pipeline(model, "full").fit(data[list(FEATURE_COLUMNS)], data["Revenue"])
    compiled, verification = compile_verified(pipeline, fresh_events[:300])
    assert isinstance(compiled.predictor, ForestPredictor)  # arrays, not the joblib wrapper
    assert verification.max_abs_difference == 0.0
    for batch in (fresh_events[:1], fresh_events[:37], fresh_events):
        expected = pipeline.predict_proba(events_to_frame(batch))[:, 1]
        np.testing.assert_array_equal(compiled.predict_proba(event_columns(batch)), expected)


def test_a_matrix_float32_cannot_hold_is_left_to_the_forest_itself() -> None:
    pipeline = _fitted("random_forest", "full")
    compiled = FastPipeline(pipeline)
    assert isinstance(compiled.predictor, ForestPredictor)
    matrix = np.zeros((3, compiled.n_features))
    matrix[1, 0] = 1e300  # finite in float64, infinite in float32
    assert compiled.predictor.predict(matrix) is None
    with pytest.raises(ValueError, match="infinity"):  # the forest's own refusal, as before
        compiled.proba_of_matrix(matrix)
