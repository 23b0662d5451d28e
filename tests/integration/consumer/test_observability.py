"""The dashboard and the alerts against real data: a real Prometheus scrapes a real consumer
through a short replay (valid events, dead letters, a restart); then every panel query of
deploy/k8s/base/dashboards/shopper-intent.json returns data and every alert expression evaluates.

A query that names a metric, a label or a label value the consumer does not export, a ``rate``
over a gauge or a histogram read without ``_bucket`` returns nothing here, and fails."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable

from tests.integration.consumer.conftest import ConsumerFactory, Topics, TopicsFactory
from tests.integration.consumer.kafka_io import produce, produce_events, synthetic_events
from tests.integration.consumer.process import ConsumerProcess, free_port
from tests.integration.prometheus import PrometheusServer
from tests.observability import (
    alert_rules,
    dashboard_targets,
    is_quality_query,
    load_dashboard,
    substitute_grafana_variables,
    template_variable_queries,
)

VALID_PER_RUN = 150
MALFORMED_PER_RUN = 3
# $__rate_interval is at least four scrape intervals in Grafana; the whole replay fits in one
# minute, so every rate covers all of it.
RATE_WINDOW = "1m"


def replay_through(
    consumer: ConsumerProcess,
    prometheus: PrometheusServer,
    bootstrap: str,
    topics: Topics,
    namespace: str,
    seed: int,
) -> None:
    """Produce valid and malformed events; return once Prometheus holds the consumer's counts."""
    events = synthetic_events(VALID_PER_RUN, seed=seed, prefix=f"obs{seed}")
    produce_events(bootstrap, topics.input, events)
    produce(bootstrap, topics.input, [(b"bad", b"{not json")] * MALFORMED_PER_RUN)
    selector = f'job="shopper-intent-scorer", namespace="{namespace}"'
    for outcome, expected in (("scored", VALID_PER_RUN), ("rejected", MALFORMED_PER_RUN)):
        prometheus.wait_for(
            f'scorer_messages_total{{{selector}, outcome="{outcome}"}} == {expected}',
            timeout_s=90,
        )
    assert consumer.metric("scorer_messages_total", 'outcome="failed"') == 0


def test_every_panel_and_alert_query_works_on_real_data(
    kafka_bootstrap: str,
    prometheus: PrometheusServer,
    topics_factory: TopicsFactory,
    start_consumer: ConsumerFactory,
    group_factory: Callable[[], str],
) -> None:
    topics = topics_factory(partitions=2)
    namespace = f"it-{uuid.uuid4().hex[:8]}"
    port = free_port()
    group = group_factory()
    prometheus.scrape([f"127.0.0.1:{port}"], namespace=namespace, pod="scorer-0")

    # The drift gauges are recomputed every DRIFT_REFRESH_EVENTS: a few within this short replay.
    drift = {"DRIFT_REFRESH_EVENTS": "50"}
    first = start_consumer(topics, group=group, METRICS_PORT=str(port), **drift)
    first.wait_ready()
    replay_through(first, prometheus, kafka_bootstrap, topics, namespace, seed=1)
    assert first.terminate() == 0
    second = start_consumer(topics, group=group, METRICS_PORT=str(port), **drift)
    second.wait_ready()
    # Prometheus must see the restarted counter at 0 before the replay: the consumer scores the
    # whole replay faster than one scrape interval, and a reset is a decrease between scrapes.
    prometheus.wait_for(
        f'scorer_messages_total{{namespace="{namespace}", outcome="scored"}} == 0', timeout_s=30
    )
    replay_through(second, prometheus, kafka_bootstrap, topics, namespace, seed=2)

    # The lag gauge follows librdkafka's statistics (every 5 s): wait for its first report.
    prometheus.wait_for(f'scorer_consumer_lag{{namespace="{namespace}"}}', timeout_s=30)
    # The restart is in the data: the counter went back to zero once.
    scored = f'scorer_messages_total{{namespace="{namespace}", outcome="scored"}}'
    assert prometheus.value(f"resets({scored}[5m])") == 1

    dashboard = load_dashboard()
    variables = {"$__rate_interval": RATE_WINDOW, "$__interval": "1s", "$namespace": namespace}
    empty = []
    for title, raw in dashboard_targets(dashboard):
        if is_quality_query(raw):
            continue  # the "Live quality" row: tests/integration/quality/test_observability.py
        expr = substitute_grafana_variables(raw, variables)
        result = prometheus.query(expr)
        values = [float(series["value"][1]) for series in result]
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{title}: {expr} -> {values or 'no series'}")
    assert not empty, "panels without data:\n" + "\n".join(empty)

    outcomes = prometheus.query(
        substitute_grafana_variables(next(iter(dashboard_targets(dashboard)))[1], variables)
    )
    assert {s["metric"].get("outcome") for s in outcomes} >= {"scored", "rejected"}
    for name, selector in template_variable_queries(dashboard):
        assert namespace in prometheus.label_values(name, selector), name

    for rule in alert_rules():
        prometheus.query(rule["expr"])  # raises PrometheusQueryError on any evaluation error
