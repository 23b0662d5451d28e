"""A fast end-to-end training run on generated data writes a complete, verifiable build."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, train_test_split

from contract.frame import events_to_frame
from contract.manifest import Manifest, read_manifest
from contract.pipeline import build_pipeline, required_columns
from contract.schema import CONTRACT_VERSION, SessionEvent
from contract.signing import generate_key_pair, load_trusted_keys, verify_build
from training.__main__ import main
from training.calibrate import candidate_oof, oof_probabilities
from training.data import deduplicate, split_features_label
from training.evaluate import choose_threshold, reliability
from training.search import families
from training.synthetic import generate_sessions

ROWS, DATA_SEED, TRAIN_SEED = 1500, 21, 3
ARTIFACTS = ("best_model_full.joblib", "best_model_no_page_values.joblib")
PLOTS = ("precision_recall", "roc", "calibration", "confusion_matrix", "feature_importance")
TOP_KEYS = {
    "build_id", "created_at", "git_sha", "contract_version", "python", "libraries", "data",
    "split", "artifacts",
}  # fmt: skip
METRIC_KEYS = {
    "roc_auc", "pr_auc", "f1", "precision", "recall", "brier", "log_loss", "ece", "reliability",
}  # fmt: skip


@dataclass(frozen=True)
class Run:
    data: Path
    registry: Path
    build: Path
    stdout: str
    manifest: dict[str, Any]


def _train(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


pytestmark = pytest.mark.slow  # one training run (~35 s) for the module


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("train")
    data = root / "sessions.csv"
    generate_sessions(ROWS, seed=DATA_SEED).to_csv(data, index=False)
    registry = root / "registry"
    argv = ["--data", str(data), "--out", str(registry), "--n-iter", "2"]
    private, public = generate_key_pair()
    (root / "signing.pem").write_bytes(private)
    (root / "trusted.pem").write_bytes(public)
    argv += ["--signing-key", str(root / "signing.pem")]
    stdout = _train([*argv, "--seed", str(TRAIN_SEED)])
    (build,) = list(registry.iterdir())
    return Run(data, registry, build, stdout, read_manifest(build).model_dump())


def test_build_layout_and_model_uris(run: Run) -> None:
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", run.build.name)
    files = {p.relative_to(run.build).as_posix() for p in run.build.rglob("*") if p.is_file()}
    expected = {*ARTIFACTS, "manifest.json", "manifest.sig", "reports/summary.md"}
    expected |= {f"reports/{v}_{plot}.png" for v in ("full", "no_page_values") for plot in PLOTS}
    assert files == expected
    uris = re.findall(r"^MODEL_URI=(\S+)$", run.stdout, flags=re.MULTILINE)
    assert uris == [(run.build / name).resolve().as_uri() for name in ARTIFACTS]


def test_the_build_is_signed_with_the_training_key(run: Run) -> None:
    trusted = load_trusted_keys(run.registry.parent / "trusted.pem")
    assert verify_build(run.build, trusted) == trusted[0]


def test_manifest_keys_and_values(run: Run) -> None:
    manifest = run.manifest
    assert set(manifest) >= TOP_KEYS
    Manifest.model_validate(manifest)
    assert manifest["build_id"] == run.build.name
    assert manifest["contract_version"] == CONTRACT_VERSION
    assert set(manifest["libraries"]) >= {"scikit-learn", "xgboost", "pandas", "numpy", "joblib"}
    data = manifest["data"]
    assert data["uri"] == str(run.data)
    assert data["sha256"] == hashlib.sha256(run.data.read_bytes()).hexdigest()
    raw = generate_sessions(ROWS, seed=DATA_SEED)
    assert data["rows_raw"] == ROWS
    assert data["rows_deduplicated"] == len(raw.drop_duplicates()) < ROWS
    assert data["rows_train"] + data["rows_test"] == data["rows_deduplicated"]
    assert data["rows_test"] == pytest.approx(0.2 * data["rows_deduplicated"], abs=1)
    split = manifest["split"]
    assert {key: split[key] for key in ("seed", "test_size", "stratified", "rule")} == {
        "seed": TRAIN_SEED,
        "test_size": 0.2,
        "stratified": True,
        "rule": "stratified",  # a CSV has no event times
    }
    assert split["time_boundary"] is None
    assert data["event_time_min"] is None
    assert data["source"] is None
    assert set(manifest["artifacts"]) == set(ARTIFACTS)
    for name, entry in manifest["artifacts"].items():
        variant = entry["variant"]
        assert name == f"best_model_{variant}.joblib"
        assert entry["required_columns"] == list(required_columns(variant))
        assert 0.0 < entry["threshold"] < 1.0
        assert entry["estimator"] in {
            "LogisticRegression",
            "RandomForestClassifier",
            "XGBClassifier",
            "CalibratedClassifier",
        }
        assert entry["calibration"]["method"] in {"none", "unweighted", "isotonic", "sigmoid"}
        assert entry["threshold_rule"] == "f1"
        assert set(entry["profile"]["features"]) == set(entry["required_columns"])
        assert entry["best_params"], "the search's chosen parameters are recorded"
        for split in ("test", "cv"):
            metrics = entry["metrics"][split]
            assert set(metrics) == METRIC_KEYS
            points = metrics.pop("reliability")
            assert all(0.0 <= value <= 1.0 for value in metrics.values())
            assert len(points) == 10
            assert (
                sum(point["n"] for point in points)
                == (manifest["data"]["rows_test" if split == "test" else "rows_train"])
            )
        assert len(entry["golden"]) == 20
    assert (
        "PageValues"
        not in manifest["artifacts"]["best_model_no_page_values.joblib"]["required_columns"]
    )


def test_models_learn_on_generated_data(run: Run) -> None:
    full = run.manifest["artifacts"]["best_model_full.joblib"]["metrics"]["test"]
    without = run.manifest["artifacts"]["best_model_no_page_values.joblib"]["metrics"]["test"]
    assert full["roc_auc"] > 0.85
    assert without["roc_auc"] > 0.6
    assert full["pr_auc"] > without["pr_auc"]


def test_hashes_sizes_and_plots(run: Run) -> None:
    for name, entry in run.manifest["artifacts"].items():
        blob = (run.build / name).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"]
        assert len(blob) == entry["size_bytes"]
    for png in (run.build / "reports").glob("*.png"):
        content = png.read_bytes()
        assert content.startswith(b"\x89PNG\r\n\x1a\n"), png.name
        assert len(content) > 5_000, png.name
    summary = (run.build / "reports" / "summary.md").read_text(encoding="utf-8")
    assert run.manifest["build_id"] in summary
    assert "no_page_values" in summary


def test_golden_rows_rescore_exactly(run: Run) -> None:
    for name, entry in run.manifest["artifacts"].items():
        pipeline = joblib.load(run.build / name)
        events = [SessionEvent.model_validate(row["event"]) for row in entry["golden"]]
        assert [e.session_id for e in events] == [f"golden-{i}" for i in range(20)]
        expected = np.array([row["probability"] for row in entry["golden"]])
        actual = pipeline.predict_proba(events_to_frame(events))[:, 1]
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
        assert len({round(p, 6) for p in expected}) > 1, "golden rows are not all alike"


def test_threshold_comes_from_out_of_fold_training_predictions(run: Run) -> None:
    """Recompute the training split, the calibrated OOF predictions of the chosen
    configuration and their F1-max threshold: it is the recorded one (the test split played
    no part), and so are the CV calibration figures."""
    frame = deduplicate(generate_sessions(ROWS, seed=DATA_SEED))
    X, y = split_features_label(frame)
    X_train, _, y_train, _ = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=TRAIN_SEED
    )
    entry = run.manifest["artifacts"]["best_model_full.joblib"]
    family = next(f for f in families(y_train, TRAIN_SEED) if f.name == entry["family"])
    pipeline = build_pipeline(family.estimator, "full").set_params(**entry["best_params"])
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=TRAIN_SEED)
    raw = oof_probabilities(pipeline, X_train, y_train, cv, n_jobs=1)
    method = entry["calibration"]["method"]
    oof = candidate_oof(method, pipeline, raw, X_train, y_train, cv, n_jobs=1)
    assert choose_threshold(y_train, oof) == pytest.approx(entry["threshold"], abs=1e-9)
    ece, _ = reliability(y_train, oof)
    assert ece == pytest.approx(entry["metrics"]["cv"]["ece"], abs=1e-9)
    cv_scores = entry["calibration"]["cv_scores"]
    assert cv_scores[method]["brier"] == min(score["brier"] for score in cv_scores.values())


def test_second_run_never_overwrites(run: Run) -> None:
    before = {p: p.read_bytes() for p in run.build.rglob("*") if p.is_file()}
    stdout = _train(
        [
            "--data", str(run.data), "--out", str(run.registry), "--n-iter", "1",
            "--variants", "full", "--families", "logistic_regression", "--seed", "4",
        ]
    )  # fmt: skip
    builds = sorted(p for p in run.registry.iterdir())
    assert len(builds) == 2
    (second,) = [p for p in builds if p != run.build]
    assert stdout.strip() == f"MODEL_URI={(second / ARTIFACTS[0]).resolve().as_uri()}"
    assert {p: p.read_bytes() for p in run.build.rglob("*") if p.is_file()} == before
    assert set(json.loads((second / "manifest.json").read_text())["artifacts"]) == {ARTIFACTS[0]}


def test_drift_report_shows_the_zeroed_feature_first(run: Run, tmp_path: Path) -> None:
    """``python -m training drift`` on new data whose PageValues are all 0 (a tracking bug)."""
    new = generate_sessions(600, seed=99).drop(columns=["Revenue"]).assign(PageValues=0.0)
    new.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "drift"
    stdout = _train(
        ["drift", "--build", run.build.as_uri(), "--data", str(tmp_path / "new.csv"),
         "--out", str(out)]
    )  # fmt: skip
    assert stdout.strip() == str(out / "summary.md")
    entry = run.manifest["artifacts"]["best_model_full.joblib"]
    pngs = {p.stem for p in out.glob("*.png")}
    assert pngs == {*entry["profile"]["features"], "probability"}
    table = [line for line in (out / "summary.md").read_text().splitlines() if "| [" in line]
    first = table[0].split("|")
    assert first[1].strip() == "PageValues"
    assert float(first[2]) > 0.25
    assert all(float(row.split("|")[2]) < 0.25 for row in table[1:])
