"""Doctored builds for the gate and shadow tests: real builds with one part replaced.

Importable by the consumer process (it runs from the repository root), so the pickles below
load there as they do here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import joblib

from contract.manifest import sha256_file


class Marker:
    """Unpickling this creates the file at `path`: proof that the pickle's code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


class FailsAfterGates:
    """The real pipeline for its first call (the golden rows), then it raises on every call."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.calls = 0

    def predict_proba(self, frame: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("this shadow fails at scoring, on purpose")
        return self.pipeline.predict_proba(frame)


def copy_build(build: Path, destination: Path) -> Path:
    shutil.copytree(build, destination)
    for path in destination.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return destination


def replace_artifact(build: Path, name: str, payload: object, *, update_manifest: bool) -> None:
    """Dump ``payload`` as the artifact ``name``; optionally record its new sha256 too."""
    artifact = build / name
    joblib.dump(payload, artifact)
    if update_manifest:
        path = build / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["artifacts"][name]["sha256"] = sha256_file(artifact)
        manifest["artifacts"][name]["size_bytes"] = artifact.stat().st_size
        path.write_text(json.dumps(manifest))
