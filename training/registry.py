"""The operator's view of a registry: ``python -m training builds --registry <dir or s3 URI>``.

A build is listed only once its ``manifest.json`` is there (training writes it last), so a build
being uploaded, or one whose upload died, is absent, exactly as it is to the consumer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from contract.manifest import MANIFEST_NAME, Manifest, artifact_name
from contract.storage import StorageError, Store, join, parse_location

logger = logging.getLogger(__name__)

__all__ = [
    "ListedArtifact",
    "ListedBuild",
    "builds_of_data",
    "format_builds",
    "list_builds",
    "trained_on",
]


@dataclass(frozen=True)
class ListedArtifact:
    name: str
    variant: str
    estimator: str
    test_roc_auc: float
    test_pr_auc: float
    test_f1: float
    threshold: float
    model_uri: str


@dataclass(frozen=True)
class ListedBuild:
    build_id: str
    created_at: str
    git_sha: str
    artifacts: tuple[ListedArtifact, ...]


def _model_uri(registry: str, build_id: str, name: str) -> str:
    location = parse_location(registry)
    if isinstance(location, Path):
        return (location / build_id / name).resolve().as_uri()
    return join(registry, build_id, name)


def list_builds(registry: str, store: Store) -> tuple[list[ListedBuild], dict[str, str]]:
    """The builds of ``registry``, oldest first, and the ignored entries with the reason."""
    builds: list[ListedBuild] = []
    ignored: dict[str, str] = {}
    for name in store.children(registry):
        if name.startswith("."):  # a build still being written locally
            continue
        try:
            raw = store.read_bytes(join(registry, name, MANIFEST_NAME))
        except StorageError as exc:
            if exc.problem != "not_found":
                raise
            ignored[name] = "no manifest.json (unfinished or not a build)"
            continue
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            ignored[name] = f"invalid manifest.json ({exc.error_count()} errors)"
            continue
        artifacts = tuple(
            ListedArtifact(
                name=artifact,
                variant=entry.variant,
                estimator=entry.estimator,
                test_roc_auc=entry.metrics.test.roc_auc,
                test_pr_auc=entry.metrics.test.pr_auc,
                test_f1=entry.metrics.test.f1,
                threshold=entry.threshold,
                model_uri=_model_uri(registry, manifest.build_id, artifact),
            )
            for artifact, entry in manifest.artifacts.items()
        )
        builds.append(
            ListedBuild(manifest.build_id, manifest.created_at, manifest.git_sha, artifacts)
        )
    for name, reason in ignored.items():
        logger.info("ignored registry entry=%s reason=%s", name, reason)
    return builds, ignored


def format_builds(builds: list[ListedBuild], ignored: dict[str, str]) -> str:
    """A plain-text table: one line per artifact, then the MODEL_URI to use."""
    lines: list[str] = []
    for build in builds:
        lines.append(f"{build.build_id}  created {build.created_at}  git {build.git_sha[:12]}")
        for a in build.artifacts:
            lines.append(
                f"  {a.variant:<16} {a.estimator:<24} test roc_auc={a.test_roc_auc:.4f} "
                f"pr_auc={a.test_pr_auc:.4f} f1={a.test_f1:.4f} threshold={a.threshold:.4f}"
            )
            lines.append(f"    MODEL_URI={a.model_uri}")
    if not builds:
        lines.append("no builds")
    for name, reason in ignored.items():
        lines.append(f"ignored {name}: {reason}")
    return "\n".join(lines)


def trained_on(manifest: bytes, data_sha256: str) -> bool:
    """Whether a build's manifest.json names the data of that sha256 as its training data."""
    data = json.loads(manifest).get("data") or {}
    return bool(data.get("sha256") == data_sha256)


def builds_of_data(registry: Path, variant: str, data_sha256: str) -> list[Path]:
    """The complete builds (a manifest written) of a registry directory trained on that data
    that hold `variant`'s artifact, oldest first: how the demos and the benchmark pass over the
    challengers `python -m training cycle` trains on collected sessions."""
    manifests = sorted(registry.glob(f"*/{MANIFEST_NAME}")) if registry.is_dir() else []
    return [
        m.parent
        for m in manifests
        if (m.parent / artifact_name(variant)).is_file() and trained_on(m.read_bytes(), data_sha256)
    ]
