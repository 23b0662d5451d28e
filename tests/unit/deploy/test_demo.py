"""The demo script's own logic: which build it picks, and a summary when nothing was scored."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from contract.manifest import MANIFEST_NAME, artifact_name

DEMO = Path(__file__).resolve().parents[3] / "deploy" / "local" / "demo.py"


@pytest.fixture(scope="module")
def demo() -> Iterator[ModuleType]:
    sys.path.insert(0, str(DEMO.parent))  # the script imports report.py from beside it
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(DEMO.parent))


def _build(registry: Path, name: str, variants: list[str], manifest: bool = True) -> Path:
    build = registry / name
    build.mkdir(parents=True)
    for variant in variants:
        (build / artifact_name(variant)).write_bytes(b"x")
    if manifest:
        (build / MANIFEST_NAME).write_text("{}")
    return build


def test_the_newest_complete_build_with_the_variant_is_picked(
    demo: ModuleType, tmp_path: Path
) -> None:
    older = _build(tmp_path, "20261101T000000Z-a", ["full", "no_page_values"])
    _build(tmp_path, "20261102T000000Z-b", ["full"])  # lacks the variant
    _build(tmp_path, "20261103T000000Z-c", ["no_page_values"], manifest=False)  # half-written
    builds = sys.modules["demo_builds"]  # imported by demo.py from beside it
    assert builds.builds_with(tmp_path, "no_page_values") == [older]
    picked = demo.find_or_train(tmp_path, "unused.csv", 1, "no_page_values")
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
