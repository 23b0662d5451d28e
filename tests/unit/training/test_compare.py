"""``python -m training compare``: champion vs challenger on the same labelled rows.

Builds are small real ones (XGBoost, 20 trees, on generated sessions) written straight into a
registry with every gate's requirements met (``tests.builds.write_pipeline_build``), not trained
by the job: the module needs a few seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier

from contract.manifest import sha256_file
from contract.metrics import metrics_at
from contract.pipeline import build_pipeline
from contract.signing import generate_key_pair, load_signing_key
from tests.builds import MarkerPickle, write_pipeline_build
from training.__main__ import main as training_main
from training.bootstrap import METRICS, ResampleScorer, interval, paired_differences
from training.compare import EXIT_NOT_WORSE, EXIT_UNDECIDED, EXIT_WORSE, Rule, main
from training.data import split_features_label
from training.evaluate import choose_threshold
from training.synthetic import generate_sessions

REPO = Path(__file__).resolve().parents[3]
RESAMPLES = "300"


@dataclass(frozen=True)
class Builds:
    champion: Path  # XGBoost on the true labels
    shuffled: Path  # the same on shuffled labels
    other: Path  # XGBoost, other depth and seed, on other rows: about as good as the champion
    data: Path  # fresh labelled rows, CSV
    keys: Path  # trusted public key of `signed`
    signed: Path  # the champion's pipeline in a signed build
    private_key: Path


def _fit(X: pd.DataFrame, y: pd.Series, depth: int = 3, seed: int = 0) -> Any:
    model = XGBClassifier(n_estimators=20, max_depth=depth, n_jobs=1, random_state=seed)
    return build_pipeline(model, "full").fit(X, y)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    root = tmp_path_factory.mktemp("compare")
    registry = root / "registry"
    X, y = split_features_label(generate_sessions(1500, seed=1))
    X2, y2 = split_features_label(generate_sessions(1500, seed=3))
    shuffled_y = pd.Series(np.random.default_rng(0).permutation(y.to_numpy()), index=y.index)

    def write(pipeline: Any, labels: pd.Series, **kwargs: Any) -> Path:
        threshold = choose_threshold(labels, pipeline.predict_proba(X)[:, 1])
        return write_pipeline_build(registry, pipeline, X, y, threshold, **kwargs)

    champion_pipeline = _fit(X, y)
    private, public = generate_key_pair()
    (root / "signing.pem").write_bytes(private)
    (root / "trusted.pem").write_bytes(public)
    generate_sessions(4000, seed=2).to_csv(root / "fresh.csv", index=False)
    return Builds(
        champion=write(champion_pipeline, y),
        shuffled=write(_fit(X, shuffled_y), shuffled_y),
        other=write(_fit(X2, y2, depth=2, seed=1), y),
        data=root / "fresh.csv",
        keys=root / "trusted.pem",
        signed=write(champion_pipeline, y, signing_key=load_signing_key(root / "signing.pem")),
        private_key=root / "signing.pem",
    )


def _compare(
    builds: Builds, champion: Path, challenger: Path, report: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    status = main(
        [
            "--champion", str(champion), "--challenger", str(challenger),
            "--data", str(builds.data), "--bootstrap", RESAMPLES, "--report", str(report),
            "--log-level", "WARNING", *extra,
        ]
    )  # fmt: skip
    result = report / "comparison.json"
    return status, json.loads(result.read_text()) if result.exists() else {}


@pytest.fixture(autouse=True)
def _no_signing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("REQUIRE_SIGNED_MODEL", raising=False)


# --- the bootstrap --------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [None, 2], ids=["distinct", "ties"])
def test_the_resampled_figures_are_contract_metrics_figures(decimals: int | None) -> None:
    """On the identity resample and on a random one, every figure equals ``metrics_at``'s,
    ties of probabilities included (an isotonic calibration makes many)."""
    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.15).astype(int)
    proba = np.clip(0.15 + 0.4 * (y - 0.15) + rng.normal(0, 0.2, len(y)), 0, 1)
    if decimals is not None:
        proba = np.round(proba, decimals)
    scorer = ResampleScorer(y, proba, threshold=0.3)
    indices = np.stack([np.arange(len(y)), rng.integers(0, len(y), len(y))])
    measured = scorer.measure(indices)
    for row, chosen in enumerate(indices):
        expected = metrics_at(y[chosen], proba[chosen], 0.3)
        for name in METRICS:
            assert measured[name][row] == pytest.approx(expected[name], abs=1e-12), name


def test_a_resample_with_one_class_has_no_auc_and_is_left_out_of_the_interval() -> None:
    y = np.array([0, 0, 0, 1])
    scorer = ResampleScorer(y, np.array([0.1, 0.2, 0.3, 0.9]), threshold=0.5)
    measured = scorer.measure(np.array([[0, 1, 2, 0], [0, 1, 2, 3]]))
    assert np.isnan(measured["roc_auc"][0])
    assert measured["roc_auc"][1] == 1.0
    assert np.isnan(measured["pr_auc"][0])
    found = interval(np.array([np.nan, 0.1, 0.2]), 0.9)
    assert found.undefined == 1
    assert 0.1 <= found.lower <= found.upper <= 0.2


def test_the_bootstrap_is_paired_and_seeded() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.3).astype(int)
    proba = rng.random(500)
    same = ResampleScorer(y, proba, 0.5)
    differences = paired_differences(same, same, len(y), 50, seed=3, block=7)
    assert all(np.array_equal(differences[name], np.zeros(50)) for name in METRICS)
    other = ResampleScorer(y, np.clip(proba + 0.1, 0, 1), 0.5)
    first = paired_differences(same, other, len(y), 50, seed=3, block=7)
    again = paired_differences(same, other, len(y), 50, seed=3, block=50)
    assert all(np.array_equal(first[name], again[name]) for name in METRICS)


def test_rules_read_metric_and_margin() -> None:
    assert Rule.parse("brier") == Rule("brier", 0.0)
    assert Rule.parse("pr_auc:0.01", default_margin=0.5) == Rule("pr_auc", 0.01)
    assert Rule.parse("ece", default_margin=0.02) == Rule("ece", 0.02)
    for bad in ("f1", "brier:-1", "brier:x", "roc_auc:nan"):
        with pytest.raises(ValueError, match="rule"):
            Rule.parse(bad)


# --- the command ----------------------------------------------------------------------------


def test_a_build_against_itself_is_not_worse(builds: Builds, tmp_path: Path) -> None:
    status, result = _compare(
        builds, builds.champion, builds.champion, tmp_path, "--rule", "brier", "--rule", "pr_auc"
    )
    assert status == EXIT_NOT_WORSE
    assert result["verdict"] == "not_worse"
    for name, difference in result["differences"].items():
        assert (difference["estimate"], difference["lower"], difference["upper"]) == (0, 0, 0), name
    assert result["champion"]["build_id"] == result["challenger"]["build_id"]
    assert result["data"]["rows"] == 4000


def test_a_build_trained_on_shuffled_labels_is_worse_with_a_narrow_interval(
    builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _compare(
        builds, builds.champion, builds.shuffled, tmp_path, "--rule", "roc_auc", "--rule", "brier"
    )
    assert status == EXIT_WORSE
    assert result["verdict"] == "worse"
    assert not any(rule["holds"] for rule in result["rules"])
    roc, brier = result["differences"]["roc_auc"], result["differences"]["brier"]
    assert roc["lower"] <= roc["estimate"] <= roc["upper"] < -0.3  # far on the wrong side
    assert roc["upper"] - roc["lower"] < 0.06  # and narrow
    assert brier["upper"] >= brier["estimate"] >= brier["lower"] > 0.05
    assert brier["upper"] - brier["lower"] < 0.015
    out = capsys.readouterr().out
    assert "verdict: WORSE (exit 1)" in out
    assert "| ROC-AUC | higher |" in out


def test_the_exit_status_follows_the_rule_and_the_margin(builds: Builds, tmp_path: Path) -> None:
    """Two builds of about equal quality: each rule's deciding bound is read from a first run,
    then a margin just past it passes and one just short of it fails. The same seed gives the
    same interval, and swapping the roles mirrors it."""
    _, first = _compare(builds, builds.champion, builds.other, tmp_path / "first")
    brier, pr_auc = first["differences"]["brier"], first["differences"]["pr_auc"]
    assert brier["lower"] < 0 < brier["upper"], "the builds should be about as good"
    assert pr_auc["lower"] < 0 < pr_auc["upper"]
    cases = [
        (["--rule", "brier"], EXIT_WORSE),  # margin 0: the interval holds losses
        (["--rule", f"brier:{brier['upper'] + 1e-9}"], EXIT_NOT_WORSE),
        (["--rule", "brier", "--margin", f"{brier['upper'] - 1e-6}"], EXIT_WORSE),
        (["--rule", "pr_auc", "--margin", f"{-pr_auc['lower'] + 1e-9}"], EXIT_NOT_WORSE),
        (["--rule", f"pr_auc:{-pr_auc['lower'] - 1e-6}"], EXIT_WORSE),
        # every rule must hold
        (["--rule", f"brier:{brier['upper'] + 1e-9}", "--rule", "pr_auc"], EXIT_WORSE),
    ]
    for number, (extra, expected) in enumerate(cases):
        status, result = _compare(
            builds, builds.champion, builds.other, tmp_path / f"{number}", *extra
        )
        assert status == expected, extra
        assert result["differences"]["brier"] == brier  # same seed, same resamples
    _, swapped = _compare(builds, builds.other, builds.champion, tmp_path / "swapped")
    mirrored = swapped["differences"]["brier"]
    assert mirrored["estimate"] == pytest.approx(-brier["estimate"], abs=1e-15)
    assert mirrored["lower"] == pytest.approx(-brier["upper"], abs=1e-15)


def test_the_report_holds_the_table_the_figures_and_the_plot(
    builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, result = _compare(builds, builds.champion, builds.other, tmp_path)
    assert status in (EXIT_NOT_WORSE, EXIT_WORSE)
    out = capsys.readouterr().out
    table = (tmp_path / "comparison.md").read_text()
    for row in ("| Brier | lower |", "| PR-AUC | higher |", "| precision at own threshold |",
                "| recall at own threshold |", "| threshold (own) |"):  # fmt: skip
        assert row in table
        assert row in out
    (verdict,) = [line for line in out.splitlines() if line.startswith("verdict: ")]
    assert f"**{verdict}**" in table
    assert (tmp_path / "reliability.png").read_bytes().startswith(b"\x89PNG")
    for role, path in (("champion", builds.champion), ("challenger", builds.other)):
        assert result[role]["uri"] == str(path)
        manifest = json.loads((path.parent / "manifest.json").read_text())
        assert result[role]["threshold"] == manifest["artifacts"][path.name]["threshold"]
        assert result[role]["build_id"] == manifest["build_id"]
        assert len(result[role]["metrics"]["reliability"]) == 10
    assert result["bootstrap"]["resamples"] == int(RESAMPLES)
    assert result["rules"] == [
        {"metric": "brier", "margin": 0.0, "holds": result["verdict"] == "not_worse",
         "bound": result["differences"]["brier"]["upper"], "test": result["rules"][0]["test"]}
    ]  # fmt: skip


def test_the_command_runs_from_the_training_entry_point(builds: Builds, tmp_path: Path) -> None:
    """``python -m training compare`` in a process of its own: the exit status is the verdict."""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    environment.pop("MODEL_TRUSTED_KEYS", None)
    argv = [
        sys.executable, "-m", "training", "compare", "--champion", builds.champion.as_uri(),
        "--challenger", str(builds.shuffled), "--data", str(builds.data), "--bootstrap", "100",
        "--report", str(tmp_path / "report"), "--rule", "pr_auc",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == EXIT_WORSE, done.stderr
    assert "verdict: WORSE" in done.stdout
    assert "signature is not checked" in done.stderr  # no trusted keys: said, not silent
    assert training_main(["compare", "--champion", str(builds.champion), "--challenger",
                          str(builds.champion), "--data", str(builds.data), "--bootstrap", "20",
                          "--report", str(tmp_path / "again")]) == EXIT_NOT_WORSE  # fmt: skip


# --- the gates ------------------------------------------------------------------------------


def _writable_copy(artifact: Path, destination: Path) -> Path:
    destination.mkdir()
    for path in artifact.parent.iterdir():
        (destination / path.name).write_bytes(path.read_bytes())
    return destination / artifact.name


def _refused(
    builds: Builds,
    challenger: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> str:
    status, result = _compare(builds, builds.signed, challenger, tmp_path / "report", *extra)
    assert status == EXIT_UNDECIDED
    assert result == {}  # no report: nothing was decided
    captured = capsys.readouterr()
    assert "verdict" not in captured.out
    assert "Traceback" not in captured.err
    return captured.err


def test_a_signed_build_passes_with_the_trusted_keys(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_TRUSTED_KEYS", str(builds.keys))  # as the consumer reads them
    monkeypatch.setenv("REQUIRE_SIGNED_MODEL", "true")
    status, result = _compare(builds, builds.signed, builds.signed, tmp_path)
    assert status == EXIT_NOT_WORSE
    assert result["challenger"]["signed_by"].startswith("sha256:")


def test_artifact_bytes_changed_after_signing_are_refused_by_the_sha256_gate(
    builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = _writable_copy(builds.signed, tmp_path / "tampered")
    joblib.dump(_fit(*split_features_label(generate_sessions(300, seed=9))), artifact)
    error = _refused(builds, artifact, tmp_path, capsys, "--trusted-keys", str(builds.keys))
    assert "model gate 'sha256' failed: the challenger" in error


def test_a_manifest_changed_after_signing_is_refused_by_the_signature_gate(
    builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = _writable_copy(builds.signed, tmp_path / "tampered")
    manifest = artifact.parent / "manifest.json"
    document = json.loads(manifest.read_text())
    document["artifacts"][artifact.name]["threshold"] = 0.01  # a better-looking recall
    manifest.write_text(json.dumps(document))
    error = _refused(builds, artifact, tmp_path, capsys, "--trusted-keys", str(builds.keys))
    assert "model gate 'signature' failed: the challenger" in error
    assert "not a signature of manifest.json by any trusted key" in error


def test_a_forged_build_is_refused_before_its_pickle_runs(
    builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Artifact replaced and its sha256 rewritten in the manifest: only the signature sees it."""
    artifact = _writable_copy(builds.signed, tmp_path / "forged")
    marker = tmp_path / "pickle-ran"
    joblib.dump(MarkerPickle(marker), artifact)
    manifest = artifact.parent / "manifest.json"
    document = json.loads(manifest.read_text())
    document["artifacts"][artifact.name]["sha256"] = sha256_file(artifact)
    manifest.write_text(json.dumps(document))
    error = _refused(builds, artifact, tmp_path, capsys, "--trusted-keys", str(builds.keys))
    assert "model gate 'signature' failed" in error
    assert not marker.exists()


def test_an_unsigned_build_is_refused_when_keys_are_trusted(
    builds: Builds,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_TRUSTED_KEYS", str(builds.keys))
    error = _refused(builds, builds.champion, tmp_path, capsys)
    assert "model gate 'signature' failed: the challenger" in error
    assert "not signed" in error


def test_signatures_are_required_only_with_keys_to_check_them(
    builds: Builds,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REQUIRE_SIGNED_MODEL", "true")
    with pytest.raises(SystemExit) as stopped:
        _compare(builds, builds.signed, builds.signed, tmp_path)
    assert stopped.value.code == EXIT_UNDECIDED
    assert "no trusted keys are given" in capsys.readouterr().err


def test_a_golden_row_that_no_longer_scores_is_refused(
    builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without keys the other gates still hold: a manifest whose golden rows disagree."""
    artifact = _writable_copy(builds.champion, tmp_path / "golden")
    manifest = artifact.parent / "manifest.json"
    document = json.loads(manifest.read_text())
    document["artifacts"][artifact.name]["golden"][3]["probability"] += 0.01
    manifest.write_text(json.dumps(document))
    error = _refused(builds, artifact, tmp_path, capsys)
    assert "model gate 'golden' failed: the challenger" in error


# --- nothing decided ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "problem", ["missing_artifact", "unlabelled_data", "missing_data", "one_class"]
)
def test_what_cannot_be_decided_exits_2_with_the_reason(
    builds: Builds, tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    challenger, data, rule = builds.other, builds.data, "brier"
    frame = pd.read_csv(builds.data)
    if problem == "missing_artifact":
        challenger = builds.other.parent / "best_model_no_page_values.joblib"
    elif problem == "unlabelled_data":
        data = tmp_path / "unlabelled.csv"
        frame.drop(columns="Revenue").to_csv(data, index=False)
    elif problem == "missing_data":
        data = tmp_path / "absent.csv"
    else:
        data, rule = tmp_path / "one_class.csv", "roc_auc"
        frame[~frame["Revenue"]].to_csv(data, index=False)
    status = main(
        ["--champion", str(builds.champion), "--challenger", str(challenger), "--data", str(data),
         "--rule", rule, "--bootstrap", "20", "--report", str(tmp_path / "report")]
    )  # fmt: skip
    assert status == EXIT_UNDECIDED
    error = capsys.readouterr().err
    assert error.startswith("compare: nothing decided: ")
    assert "Traceback" not in error
    expected = {
        "missing_artifact": "model gate 'artifact' failed",
        "unlabelled_data": "missing columns ['Revenue']",
        "missing_data": "cannot read",
        "one_class": "rule roc_auc cannot be decided",
    }[problem]
    assert expected in error


@pytest.mark.parametrize(
    "arguments",
    [
        ["--rule", "accuracy"],
        ["--margin", "-0.1"],
        ["--confidence", "1.5"],
        ["--bootstrap", "0"],
        ["--challenger", "ftp://host/best_model_full.joblib"],
    ],
)
def test_bad_arguments_are_usage_errors(
    builds: Builds, tmp_path: Path, arguments: list[str]
) -> None:
    base = {"--champion": str(builds.champion), "--challenger": str(builds.other),
            "--data": str(builds.data)}  # fmt: skip
    for option, value in zip(arguments[::2], arguments[1::2], strict=True):
        base[option] = value
    with pytest.raises(SystemExit) as stopped:
        main([item for pair in base.items() for item in pair])
    assert stopped.value.code == EXIT_UNDECIDED
