"""quality.metrics: figures published in place, a build no longer seen removed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from quality.metrics import QualityMetrics
from quality.window import PRIMARY, Figures


def figure(brier: float) -> Figures:
    return Figures(10, 0.5, {"brier": brier, "roc_auc": float("nan")}, {"brier": 0.1})


def test_publish_sets_in_place_and_removes_what_is_gone() -> None:
    registry = CollectorRegistry()
    metrics = QualityMetrics.create(registry)
    a, b = (PRIMARY, "build-a", "full"), (PRIMARY, "build-b", "full")
    metrics.publish({a: figure(0.2), b: figure(0.3)}, {}, {}, {})
    labels = {"role": PRIMARY, "build_id": "build-a", "variant": "full", "metric": "brier"}
    assert registry.get_sample_value("quality_live", labels) == 0.2
    # nan (an AUC on one class) is left out rather than exported
    assert registry.get_sample_value("quality_live", {**labels, "metric": "roc_auc"}) is None
    metrics.publish({a: figure(0.25)}, {}, {}, {})
    assert registry.get_sample_value("quality_live", labels) == 0.25
    gone = {**labels, "build_id": "build-b"}
    assert registry.get_sample_value("quality_live", gone) is None
    window = {"role": PRIMARY, "build_id": "build-b", "variant": "full"}
    assert registry.get_sample_value("quality_window_labels", window) is None
