"""The "Live quality" dashboard row against real data: a real Prometheus scrapes a real quality
monitor that joins a primary and a shadow scores topic with their outcomes; every panel query of
the row returns data and every quality alert expression evaluates."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from pathlib import Path

from benchmarks.replay import free_port
from tests.integration.broker import GroupFactory, TopicFactory
from tests.integration.prometheus import PrometheusServer
from tests.observability import (
    alert_rules,
    dashboard_targets,
    is_quality_query,
    load_dashboard,
    substitute_grafana_variables,
)

from .stream import publish, scored_stream
from .support import Start, labelled, wait_for

RATE_WINDOW = "1m"


def test_every_live_quality_panel_shows_data(
    kafka_bootstrap: str,
    prometheus: PrometheusServer,
    topic_factory: TopicFactory,
    group_factory: GroupFactory,
    model_build: Path,
    start_monitor: Start,
) -> None:
    stream = scored_stream(model_build, 120, 1, seed=9)
    # The shadow: the same build's other variant, as a shadow scorer would write it.
    shadow = replace(stream, variant="no_page_values")
    scores, shadow_scores, outcomes = topic_factory(1), topic_factory(1), topic_factory(1)
    namespace, port = f"it-{uuid.uuid4().hex[:8]}", free_port()
    prometheus.scrape(
        [f"127.0.0.1:{port}"], job="shopper-intent-quality", namespace=namespace, pod="quality-0"
    )
    publish(kafka_bootstrap, shadow, shadow.rows, shadow_scores, None)
    first, rest = stream.rows[:60], stream.rows[60:]
    publish(kafka_bootstrap, stream, first, scores, outcomes)
    monitor = start_monitor(
        {
            "SCORES_TOPIC": scores,
            "SHADOW_SCORES_TOPIC": shadow_scores,
            "OUTCOME_TOPIC": outcomes,
            "QUALITY_CONSUMER_GROUP": group_factory(),
            "OUTCOME_WINDOW": "120s",
            "QUALITY_MODEL_REGISTRY": str(model_build.parent),
            "METRICS_PORT": str(port),
        }
    )
    # Half the stream before Prometheus first sees the counters, half after: the rates move.
    judged = f'quality_judged_total{{namespace="{namespace}"}}'
    prometheus.wait_for(judged, timeout_s=60)
    publish(kafka_bootstrap, stream, rest, scores, outcomes)
    wait_for("every row judged", lambda: labelled(monitor, stream) == len(stream.rows), monitor)
    pair = f'primary_variant="full", shadow_variant="no_page_values", namespace="{namespace}"'
    prometheus.wait_for(f"quality_paired_labels{{{pair}}} == {len(stream.rows)}", timeout_s=30)
    for counter in ("quality_outcomes_total", "quality_judged_total"):
        selector = f'{counter}{{namespace="{namespace}"}}'
        prometheus.wait_for(f"rate({selector}[{RATE_WINDOW}]) > 0", timeout_s=30)

    variables = {"$__rate_interval": RATE_WINDOW, "$__interval": "1s", "$namespace": namespace}
    empty, checked = [], 0
    for title, raw in dashboard_targets(load_dashboard()):
        if not is_quality_query(raw):
            continue
        checked += 1
        expr = substitute_grafana_variables(raw, variables)
        values = [float(series["value"][1]) for series in prometheus.query(expr)]
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{title}: {expr} -> {values or 'no series'}")
    assert checked >= 7
    assert not empty, "panels without data:\n" + "\n".join(empty)
    agreement = prometheus.value(f"quality_agreement{{{pair}}}")
    assert agreement is not None
    assert 0 <= agreement <= 1
    for rule in alert_rules():
        prometheus.query(rule["expr"])  # raises PrometheusQueryError on any evaluation error
