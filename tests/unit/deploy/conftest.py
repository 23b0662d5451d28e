"""Fixtures for the deploy/ tests: the repository's paths and the rendered kustomize overlays.

Rendering uses the real kustomize that ``make install`` builds into ``.tools/bin`` (pinned in the
Makefile). A missing binary fails the tests; it never skips them.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.observability import exported_samples

REPO_ROOT = Path(__file__).resolve().parents[3]
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OVERLAYS_DIR = K8S_DIR / "overlays"
LOCAL_DIR = REPO_ROOT / "deploy" / "local"
CRD_SCHEMAS_DIR = Path(__file__).resolve().parent / "crd_schemas"
KUSTOMIZE = REPO_ROOT / ".tools" / "bin" / "kustomize"
# Object names (Deployment, Service, PodDisruptionBudget, ServiceMonitor) of the two workloads
# an environment overlay deploys from one image: the Kafka consumer and the HTTP front door.
SCORER = "shopper-intent-scorer"
SERVE = "shopper-intent-serve"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """One overlay's ``kustomize build`` output, parsed."""

    overlay: str
    docs: list[Manifest] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name_prefix: str = "") -> Manifest:
        """The one object of `kind` whose name starts with `name_prefix` (SCORER, SERVE, ...)."""
        found = [
            doc for doc in self.of_kind(kind) if doc["metadata"]["name"].startswith(name_prefix)
        ]
        assert len(found) == 1, f"{self.overlay}: expected one {kind} {name_prefix!r}, got {found}"
        return found[0]


def overlay_names() -> list[str]:
    """Every directory under deploy/k8s/overlays with a kustomization.yaml (dev, dev/train, ...)."""
    return sorted(
        str(path.parent.relative_to(OVERLAYS_DIR))
        for path in OVERLAYS_DIR.rglob("kustomization.yaml")
    )


def consumer_overlays() -> list[str]:
    """Overlays that deploy the consumer (the ``*/train`` ones only hold the training Job)."""
    return [name for name in overlay_names() if not name.endswith("/train")]


def render(directory: Path) -> list[Manifest]:
    hint = f"kustomize not found at {KUSTOMIZE}: run `make install` (it builds the pinned version)"
    assert KUSTOMIZE.is_file(), hint
    assert os.access(KUSTOMIZE, os.X_OK), hint
    result = subprocess.run(
        [str(KUSTOMIZE), "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {directory} failed:\n{result.stderr}"
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    assert docs, f"kustomize build {directory} rendered nothing"
    return docs


_CACHE: dict[str, Rendered] = {}


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], Rendered]:
    """``rendered("prod")`` -> the parsed output of ``kustomize build deploy/k8s/overlays/prod``."""

    def get(overlay: str) -> Rendered:
        if overlay not in _CACHE:
            _CACHE[overlay] = Rendered(overlay, render(OVERLAYS_DIR / overlay))
        return _CACHE[overlay]

    return get


@pytest.fixture(scope="session")
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON Schema for the custom resources the manifests use."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_SCHEMAS_DIR.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        props = schema["properties"]
        schemas[(props["apiVersion"]["const"], props["kind"]["const"])] = schema
    return schemas


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``overlay`` over every overlay, ``consumer_overlay`` over those with the
    consumer; both lists come from the tree, so a new overlay is tested without an edit here."""
    if "overlay" in metafunc.fixturenames:
        metafunc.parametrize("overlay", overlay_names())
    if "consumer_overlay" in metafunc.fixturenames:
        metafunc.parametrize("consumer_overlay", consumer_overlays())


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def exposition() -> dict[str, set[str]]:
    """Sample name -> its label names, from a real exposition of the consumer's ScorerMetrics."""
    return exported_samples()


@pytest.fixture(scope="module")
def local_script() -> Iterator[Callable[[str], ModuleType]]:
    """``local_script("demo")``: a deploy/local script imported as it runs, its siblings
    (demo_builds.py, report.py, ...) importable from beside it."""
    sys.path.insert(0, str(LOCAL_DIR))
    yield importlib.import_module
    sys.path.remove(str(LOCAL_DIR))
