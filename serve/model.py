"""The build in service: loaded through the runtime's gates, with the runtime's observers.

``load_served_model`` is what the consumer does at start, minus Kafka: ``scoring.fetch.load_model``
(fetch, signature, sha256, libraries, columns, golden rows; GateError names the gate that
refused), then the drift sentinel and the shadow (``SHADOW_MODEL_URI``: compared in the metrics
only; serve has no shadow output). ``observe`` hands each scored batch to both; requests score
on several threads at once, so it serialises the sentinel's window (the shadow's hand-off is
thread-safe and never blocks).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from contract.manifest import ArtifactEntry, Manifest
from contract.schema import CONTRACT_VERSION
from contract.storage import Store
from scoring.batch import ScoredBatch
from scoring.drift import DriftSentinel, drift_sentinel
from scoring.fetch import load_model
from scoring.gates import artifact_entry, manifest_beside
from scoring.metrics import RuntimeMetrics
from scoring.scorer import Scorer
from scoring.settings import ModelSettings
from scoring.shadow import Shadow, set_primary_info, start_shadow

logger = logging.getLogger(__name__)


@dataclass
class ServedModel:
    """The primary build's scorer and manifest entry, and the observers of its batches."""

    scorer: Scorer
    manifest: Manifest
    entry: ArtifactEntry
    drift: DriftSentinel | None = None
    shadow: Shadow | None = None
    _drift_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe(self, batch: ScoredBatch) -> None:
        """Feed the drift sentinel and the shadow; never raises (they are not the answer)."""
        if not batch.events:
            return
        try:
            if self.drift is not None:
                with self._drift_lock:
                    self.drift.observe(batch.columns, batch.probabilities)
        except Exception:
            logger.exception("drift sentinel failed on a batch; the answer is not affected")
        if self.shadow is not None:
            self.shadow.supervise()  # switches off a shadow over SHADOW_BATCH_TIMEOUT_S
            self.shadow.observe(batch)

    def description(self) -> dict[str, Any]:
        """``GET /v1/model``: what serves, its decision threshold and its test metrics."""
        info = self.scorer.info
        return {
            "model_build_id": info.build_id,
            "model_variant": info.variant,
            "git_sha": info.git_sha,
            "threshold": info.threshold,
            "threshold_rule": self.entry.threshold_rule,
            "contract_version": CONTRACT_VERSION,
            "build_contract_version": self.manifest.contract_version,
            "estimator": self.entry.estimator,
            "created_at": self.manifest.created_at,
            "scoring_path": self.scorer.path,
            "test_metrics": self.entry.metrics.test.model_dump(exclude={"reliability"}),
        }

    def close(self, timeout_s: float) -> None:
        if self.shadow is not None:
            self.shadow.close(timeout_s)


def load_served_model(
    settings: ModelSettings, store: Store, metrics: RuntimeMetrics
) -> ServedModel:
    """Fetch and gate MODEL_URI (GateError names the gate that refused), start the observers."""
    scorer, artifact = load_model(settings.model_uri, settings, store)
    manifest = manifest_beside(artifact)
    entry = artifact_entry(manifest, artifact)
    set_primary_info(metrics, scorer.info)
    metrics.set_scoring_path(scorer.path)
    drift = drift_sentinel(settings, metrics, scorer.info.threshold, artifact)
    shadow = start_shadow(settings, scorer.info, store, metrics)
    return ServedModel(scorer, manifest, entry, drift, shadow)
