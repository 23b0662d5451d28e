"""The demo script's own logic: which build it picks (the newest of the dataset), and a summary when
nothing was scored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from contract.manifest import MANIFEST_NAME, artifact_name, sha256_file
from training.registry import builds_of_data


@pytest.fixture(scope="module")
def demo(local_script: Callable[[str], ModuleType]) -> ModuleType:
    return local_script("demo")


def _build(
    registry: Path, name: str, variants: list[str], data_sha256: str, manifest: bool = True
) -> Path:
    build = registry / name
    build.mkdir(parents=True)
    for variant in variants:
        (build / artifact_name(variant)).write_bytes(b"x")
    if manifest:
        (build / MANIFEST_NAME).write_text(json.dumps({"data": {"sha256": data_sha256}}))
    return build


def test_the_newest_complete_build_of_the_data_with_the_variant_is_picked(
    demo: ModuleType, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("Revenue\nTrue\n")
    digest = sha256_file(data)
    registry = tmp_path / "registry"
    older = _build(registry, "20261101T000000Z-a", ["full", "no_page_values"], digest)
    _build(registry, "20261102T000000Z-b", ["full"], digest)  # lacks the variant
    _build(registry, "20261103T000000Z-c", ["no_page_values"], digest, manifest=False)  # unfinished
    # A challenger `make cycle` trained on collected sessions: not a build of the dataset.
    _build(registry, "20261104T000000Z-d", ["no_page_values"], "0" * 64)
    assert builds_of_data(registry, "no_page_values", digest) == [older]
    picked = demo.find_or_train(registry, str(data), 1, "no_page_values")
    assert picked == older / artifact_name("no_page_values")


def test_the_summary_of_a_replay_that_scored_nothing(
    demo: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = {
        "events_in": 3,
        "scored": 0,
        "positives": 0,
        "dead_lettered": 3,
        "dead_letter_reasons": ["invalid_json"],
        "unaccounted": 0,
        "replay_rate": 3.0,
        "throughput": 0.0,
        "latency_p50_ms": None,
        "latency_p99_ms": None,
        "examples": [],
    }
    demo.print_summary(summary)
    assert "none measured: nothing was scored" in capsys.readouterr().out
