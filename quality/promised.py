"""What each build promised: its test-split figures, read from its manifest in the registry.

A scored record carries its build id and variant (consumer/output_record.schema.json); the
manifest of build ``B`` is ``<QUALITY_MODEL_REGISTRY>/B/manifest.json``, the layout training
writes (``contract.manifest``). Each build is read once; one that cannot be read is logged once
and shown without a promise.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from contract.manifest import MANIFEST_NAME, Manifest
from contract.storage import StorageError, Store, join
from quality.window import LIVE_METRICS

logger = logging.getLogger(__name__)


class Promises:
    """The test figures of each (build id, variant), fetched on first sight."""

    def __init__(self, registry: str | None, store: Store) -> None:
        self._registry = registry
        self._store = store
        self._known: dict[tuple[str, str], dict[str, float]] = {}
        self._read: set[str] = set()

    def of(self, build_id: str, variant: str) -> dict[str, float]:
        if self._registry is not None and build_id not in self._read:
            self._read.add(build_id)
            self._load(self._registry, build_id)
        return self._known.get((build_id, variant), {})

    def all(self) -> dict[tuple[str, str], dict[str, float]]:
        return dict(self._known)

    def _load(self, registry: str, build_id: str) -> None:
        uri = join(registry, build_id, MANIFEST_NAME)
        try:
            manifest = Manifest.model_validate_json(self._store.read_bytes(uri))
        except (StorageError, ValidationError) as exc:
            logger.warning("no promised figures build_id=%s: %s", build_id, exc)
            return
        for entry in manifest.artifacts.values():
            test = entry.metrics.test.model_dump()
            self._known[(build_id, entry.variant)] = {
                # The live figures the manifest's test split has too.
                name: float(test[name])
                for name in LIVE_METRICS
                if test.get(name) is not None
            }
        logger.info("promised figures read build_id=%s uri=%s", build_id, uri)
