"""``make cycle``'s own logic (deploy/local/demo_cycle.py): the range and the fresh share it gives
``python -m training cycle``, what it reads of the cycle's output, and its summary of a real
``comparison.json``. The demo itself (a broker, the consumer, the monitor, the cycle) is run by
``make cycle``, not here."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from sklearn.linear_model import LogisticRegression

from contract.durations import duration_seconds
from contract.pipeline import build_pipeline
from tests.builds import write_pipeline_build
from training.compare import EXIT_NOT_WORSE, EXIT_WORSE
from training.compare import main as compare_main
from training.cycle import Ranges
from training.data import split_features_label
from training.synthetic import generate_sessions
from training.timerange import iso_ms

FROM_MS = 1_796_000_000_000  # 2026-11-30T...Z


@pytest.fixture(scope="module")
def cycle(local_script: Callable[[str], ModuleType]) -> ModuleType:
    return local_script("demo_cycle")


@pytest.mark.parametrize(
    ("span_ms", "share", "fresh", "fresh_ms"),
    [(120_000, 0.25, "30s", 30_000), (16_019, 0.25, "4.005s", 4_005), (999, 0.5, "0.5s", 500)],
)
def test_fresh_is_the_last_share_of_the_stretch_as_the_cycle_reads_it(
    cycle: ModuleType, span_ms: int, share: float, fresh: str, fresh_ms: int
) -> None:
    to_ms = FROM_MS + span_ms
    assert cycle.fresh_duration(FROM_MS, to_ms, share) == fresh
    assert duration_seconds(fresh) * 1000 == pytest.approx(fresh_ms)
    # The cycle's own arithmetic on the arguments the demo gives it: the whole stretch, its
    # last `fresh_ms` kept for the comparison, both ends included.
    ranges = Ranges.of(None, iso_ms(FROM_MS), iso_ms(to_ms), fresh, 0, 0.0)
    assert (ranges.train_from, ranges.to) == (FROM_MS, to_ms)
    assert ranges.to - ranges.fresh_from + 1 == fresh_ms


@pytest.mark.parametrize("share", [0.0, 1.0, -0.25])
def test_a_fresh_share_outside_0_and_1_is_refused(cycle: ModuleType, share: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        cycle.fresh_duration(FROM_MS, FROM_MS + 60_000, share)


def test_the_cycle_command_covers_the_stretch_with_cheap_families_and_both_rules(
    cycle: ModuleType,
) -> None:
    stretch = cycle.Stretch(8000, FROM_MS, FROM_MS + 16_019, FROM_MS + 20_000)
    args = argparse.Namespace(cycle_n_iter=4, families="logistic_regression,xgboost")
    command = cycle.cycle_command("s3://bucket/registry", stretch, "4.005s", args)
    assert command[1:4] == ["-m", "training", "cycle"]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options == {
        "--registry": "s3://bucket/registry",
        "--from": iso_ms(FROM_MS),
        "--to": iso_ms(FROM_MS + 16_019),
        "--fresh": "4.005s",
        "--n-iter": "4",
        "--families": "logistic_regression,xgboost",
        "--rule": "brier",  # the last of the two
    }
    assert command.count("--rule") == 2
    assert command[command.index("--rule") + 1] == "roc_auc"


def test_only_the_key_value_lines_of_the_cycle_are_read(cycle: ModuleType) -> None:
    stdout = "\n".join(
        [
            "DATA=/r/datasets/20261203T231435Z/train",
            "| Brier | lower | 0.1920 | 0.1058 | -0.08621 | [-0.09593, -0.07699] |",
            "verdict: NOT WORSE (exit 0): brier: upper bound ... <= margin +0.00000",
            "CHALLENGER=s3://bucket/registry/b/best_model_full.joblib",
            "VERDICT=not_worse",
            "to promote: MODEL_URI=/r/b/best_model_full.joblib in deploy/k8s/...",
        ]
    )
    assert cycle.printed_settings(stdout) == {
        "DATA": "/r/datasets/20261203T231435Z/train",
        "CHALLENGER": "s3://bucket/registry/b/best_model_full.joblib",
        "VERDICT": "not_worse",
    }


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real comparison reports (``python -m training compare``'s own), on sessions whose
    page values now put people off buying: a champion fitted where they meant buying against a
    challenger fitted after the change (``not_worse``), and the other way round (``worse``)."""
    root = tmp_path_factory.mktemp("cycle-summary")
    before = split_features_label(generate_sessions(1500, seed=1))
    after = split_features_label(generate_sessions(1500, seed=2, page_value_effect=-1.5))
    builds = []
    for X, y in (before, after):
        pipeline = build_pipeline(LogisticRegression(max_iter=500), "full").fit(X, y)
        builds.append(write_pipeline_build(root / "registry", pipeline, X, y, threshold=0.3))
    fresh = generate_sessions(1000, seed=3, page_value_effect=-1.5)
    fresh.to_csv(root / "fresh.csv", index=False)
    found = {}
    for verdict, (champion, challenger), status in (
        ("not_worse", builds, EXIT_NOT_WORSE),
        ("worse", builds[::-1], EXIT_WORSE),
    ):
        argv = [
            "--champion", champion.as_uri(), "--challenger", str(challenger),
            "--data", str(root / "fresh.csv"), "--bootstrap", "50", "--rule", "roc_auc",
            "--rule", "brier", "--report", str(root / verdict), "--log-level", "WARNING",
        ]  # fmt: skip
        assert compare_main(argv) == status
        found[verdict] = root / verdict
    return found


def _summary(cycle: ModuleType, report: Path, store_env: dict[str, str]) -> list[str]:
    comparison = cycle.read_comparison(str(report), {})
    challenger = comparison["challenger"]["uri"]
    printed = {"CHALLENGER": challenger, "REPORT": str(report), "VERDICT": comparison["verdict"]}
    stretch = cycle.Stretch(8000, FROM_MS, FROM_MS + 16_019, FROM_MS + 20_000)
    topics = {"input": "in", "output": "out", "dlq": "dlq", "outcomes": "outcomes"}
    demo = cycle.Services(bootstrap="127.0.0.1:9092", topics=topics, store_env=store_env)
    lines: list[str] = cycle.summary_lines(
        comparison, printed, stretch, "4.005s", demo, {"total": 100.0}
    )
    return lines


def test_the_summary_shows_both_builds_the_verdict_and_how_to_promote(
    cycle: ModuleType, reports: dict[str, Path]
) -> None:
    comparison = cycle.read_comparison(str(reports["not_worse"]), {})
    lines = _summary(cycle, reports["not_worse"], {})
    text = "\n".join(lines)
    champion, challenger = comparison["champion"], comparison["challenger"]
    assert champion["build_id"] in text
    assert challenger["build_id"] in text
    fresh = iso_ms(FROM_MS + 16_019 - 4_005 + 1)
    assert f"fresh outcomes   {fresh} .. {iso_ms(FROM_MS + 16_019)} (--fresh 4.005s)" in text
    assert f"{comparison['data']['rows']:,} sessions" in text
    (brier,) = [line for line in lines if line.startswith("brier ")]
    assert brier.split()[1:3] == [
        f"{champion['metrics']['brier']:.4f}",
        f"{challenger['metrics']['brier']:.4f}",
    ]
    assert "verdict          NOT WORSE" in text
    assert sum(1 for line in lines if line.startswith("  roc_auc: ") and "holds" in line) == 1
    assert f"    MODEL_URI={challenger['uri']}" in lines
    (restart,) = [line for line in lines if line.endswith(" -m consumer")]
    assert restart.split()[:6] == [
        f"MODEL_URI={challenger['uri']}",
        "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092",
        "INPUT_TOPIC=in",
        "OUTPUT_TOPIC=out",
        "DLQ_TOPIC=dlq",
        "CONSUMER_GROUP=demo-in",
    ]
    assert "AWS_" not in restart
    secret = {"AWS_SECRET_ACCESS_KEY": "not-to-be-printed"}
    with_store = "\n".join(_summary(cycle, reports["not_worse"], secret))
    assert "AWS_*=<the S3 server's settings>" in with_store
    assert "not-to-be-printed" not in with_store


def test_a_worse_challenger_is_not_offered_for_promotion(
    cycle: ModuleType, reports: dict[str, Path]
) -> None:
    text = "\n".join(_summary(cycle, reports["worse"], {}))
    assert "verdict          WORSE: the challenger is worse by a rule: keep the champion" in text
    assert "fails" in text
    assert "MODEL_URI=" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fresh-share", "1"], "--fresh-share must be between 0 and 1"),
        (["--outcome-window", "soon"], "--outcome-window: must be a duration"),
        (["--changed", "60000", "--rate", "500"], "stretch B lasts 120 s at --rate 500"),
    ],
)
def test_arguments_that_would_spoil_the_cycle_are_refused_before_anything_starts(
    cycle: ModuleType, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cycle.parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert cycle.parse_args([]).outcome_window == "2m"  # the defaults pass: 16 s in a 2 m window
