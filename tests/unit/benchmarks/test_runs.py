"""Which build `make bench` measures: the newest of its dataset, never a challenger of
collected sessions that `make cycle` left newer in the same registry."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.runs import find_or_train_model
from contract.manifest import MANIFEST_NAME, artifact_name, sha256_file


def _build(registry: Path, build_id: str, data_sha256: str) -> Path:
    build = registry / build_id
    build.mkdir(parents=True)
    (build / artifact_name("full")).write_bytes(b"model")
    (build / MANIFEST_NAME).write_text(json.dumps({"data": {"sha256": data_sha256}}))
    return build


def test_the_newest_build_of_the_dataset_is_measured_not_a_newer_challenger(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("Revenue\nTrue\n")
    registry = tmp_path / "registry"
    _build(registry, "20261101T000000Z-a", sha256_file(data))
    champion = _build(registry, "20261102T000000Z-b", sha256_file(data))
    _build(registry, "20261103T000000Z-c", "0" * 64)  # trained on collected sessions
    expected = (champion / artifact_name("full")).resolve().as_uri()
    assert find_or_train_model(registry, data) == expected
