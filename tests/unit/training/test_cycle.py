"""training.cycle: its ranges, the variant a MODEL_URI names, and what a failing step means
for the exit status (the steps themselves are tested on their own and, end to end, in
tests/integration/training/test_cycle.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from training.cycle import Ranges, Steps, main, variant_of
from training.timerange import parse_instant

NOW = parse_instant("2026-12-03T12:00:00Z")
HOUR = 3_600_000
DAY = 24 * HOUR


def test_the_range_ends_a_window_before_now_and_the_fresh_part_is_its_end() -> None:
    ranges = Ranges.of(None, None, None, "2d", NOW, window_s=86_400)
    assert ranges.to == NOW - DAY
    assert ranges.train_from == ranges.to - 28 * DAY
    assert ranges.fresh_from == ranges.to - 2 * DAY + 1  # adjacent, both ends included
    named = Ranges.of(None, "2026-11-01", "2026-11-08", "1d", NOW, window_s=86_400)
    assert named.train_from == parse_instant("2026-11-01")
    assert named.to == parse_instant("2026-11-08")


@pytest.mark.parametrize(
    ("since", "from_", "fresh", "message"),
    [
        ("7d", "2026-11-01", "1d", "not both"),
        ("2d", None, "2d", "nothing to train on"),
        ("2d", None, "3d", "nothing to train on"),
    ],
)
def test_a_range_with_nothing_to_train_on_is_refused(
    since: str, from_: str | None, fresh: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Ranges.of(since, from_, None, fresh, NOW, window_s=0)


def test_the_variant_comes_from_the_artifact_name() -> None:
    assert variant_of("s3://models/registry/b1/best_model_no_page_values.joblib") == (
        "no_page_values"
    )
    assert variant_of("file:///registry/b1/best_model_full.joblib") == "full"
    with pytest.raises(ValueError, match="best_model_<variant>"):
        variant_of("file:///registry/b1/manifest.json")


def _steps(collect: int = 0, train: int = 0, compare: int = 0) -> tuple[Steps, list[str]]:
    called: list[str] = []

    def step(name: str, status: int) -> object:
        def run(argv: Sequence[str]) -> int:
            called.append(name)
            if status == 2:
                raise SystemExit(2)  # what argparse does with a bad argument
            return status

        return run

    return Steps(step("collect", collect), step("train", train), step("compare", compare)), called


@pytest.mark.parametrize(
    ("statuses", "exit_status", "ran"),
    [
        ({"collect": 1}, 1, ["collect"]),
        ({"collect": 2}, 2, ["collect"]),
        ({"train": 1}, 1, ["collect", "collect", "train"]),
    ],
)
def test_a_failing_step_stops_the_cycle_with_its_kind_of_exit(
    tmp_path: Path, statuses: dict[str, int], exit_status: int, ran: list[str]
) -> None:
    steps, called = _steps(**statuses)
    argv = ["--registry", str(tmp_path), "--champion", "/r/b/best_model_full.joblib"]
    assert main(argv, environ={}, steps=steps, clock=lambda: NOW / 1000) == exit_status
    assert called == ran


def test_training_that_writes_no_build_is_a_failure(tmp_path: Path) -> None:
    steps, called = _steps()
    argv = ["--registry", str(tmp_path), "--champion", "/r/b/best_model_full.joblib"]
    assert main(argv, environ={}, steps=steps, clock=lambda: NOW / 1000) == 1
    assert called == ["collect", "collect", "train"]


def test_without_a_champion_the_cycle_does_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps, called = _steps()
    with pytest.raises(SystemExit) as stopped:
        main(["--registry", str(tmp_path)], environ={}, steps=steps)
    assert stopped.value.code == 2
    assert "MODEL_URI" in capsys.readouterr().err
    assert called == []
