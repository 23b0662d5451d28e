"""Alerts and the dashboard use only what the consumer exports: every PromQL expression parses
(a real PromQL parser), every metric it selects is a sample name in the consumer's exposition,
every label it matches exists on that metric, and every runbook anchor exists."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from consumer.metrics import METRIC_NAMES
from quality.metrics import METRIC_NAMES as QUALITY_METRIC_NAMES
from tests.observability import (
    REPO_ROOT,
    alert_rules,
    check_selectors,
    dashboard_targets,
    load_dashboard,
    rule_groups,
    selectors,
    substitute_grafana_variables,
    template_variable_queries,
)
from tests.unit.deploy.conftest import SCORER
from tests.unit.deploy.test_deploy_quality import QUALITY

OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"
# Grafana template variables, replaced by values of the right shape before parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$namespace": "ns"}
REQUIRED_ALERTS = {
    "ShopperScorerLagGrowing",
    "ShopperScorerDeadLetterRate",
    "ShopperScorerLatencyHigh",
    "ShopperScorerNothingScored",
    "ShopperScorerNotReady",
}

Rendered = Any  # conftest.Rendered
RenderFn = Callable[[str], Rendered]


def check_expression(expr: str, exposition: dict[str, set[str]], where: str) -> set[str]:
    try:
        return check_selectors(expr, exposition, where)
    except ValueError as exc:
        pytest.fail(f"{where}: not valid PromQL ({exc}): {expr}")


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub derives from headings: lower case, punctuation dropped, spaces to '-'."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_metric_names_match_the_exposition(exposition: dict[str, set[str]]) -> None:
    """METRIC_NAMES and the real exposition agree (counters as ``_total``, histograms by
    ``_bucket``), so a name check against either is a check against both."""
    families = set()
    for sample in exposition:
        for suffix in ("_bucket", "_sum", "_count", "_created"):
            sample = sample.removesuffix(suffix)
        families.add(sample)
    assert {*METRIC_NAMES, *QUALITY_METRIC_NAMES} <= families | {n + "_total" for n in families}
    assert {"scorer_messages_total", "scorer_end_to_end_latency_seconds_bucket"} <= set(exposition)


def test_selector_check_is_not_vacuous(exposition: dict[str, set[str]]) -> None:
    with pytest.raises(AssertionError, match="not exported"):
        check_expression("rate(scorer_messages[5m])", exposition, "probe")
    with pytest.raises(AssertionError, match="no label"):
        check_expression('scorer_ready{outcome="scored"}', exposition, "probe")
    with pytest.raises(pytest.fail.Exception, match="not valid PromQL"):
        check_expression("sum(rate(scorer_messages_total[5m])", exposition, "probe")


def test_alerts_use_only_exported_metrics(exposition: dict[str, set[str]]) -> None:
    names = set()
    for rule in alert_rules():
        names |= check_expression(rule["expr"], exposition, rule["alert"])
    assert names >= {
        "scorer_consumer_lag",
        "scorer_messages_total",
        "scorer_end_to_end_latency_seconds_bucket",
        "scorer_ready",
    }


def test_required_alerts_have_runbooks() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) >= REQUIRED_ALERTS
    anchors = github_anchors(OPERATIONS_DOC.read_text(encoding="utf-8"))
    for name, rule in rules.items():
        assert re.fullmatch(r"\d+m", rule["for"]), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
        doc, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert doc == "docs/operations.md", name
        assert anchor in anchors, f"{name}: docs/operations.md has no heading for #{anchor}"


def test_alert_job_label_is_the_scraped_service(rendered: RenderFn) -> None:
    """Each alert selects the job of the Service scraping its metrics: the scorer's, or the
    quality monitor's for quality_* metrics."""
    services = {
        prefix: rendered("prod").one("Service", name)["metadata"]["name"]
        for prefix, name in (("scorer_", SCORER), ("quality_", QUALITY))
    }
    for rule in alert_rules():
        for selector in selectors(rule["expr"]):
            prefix = selector.name.split("_", 1)[0] + "_"
            assert selector.labels.get("job") == services[prefix], (rule["alert"], selector)


def test_dashboard_uses_only_exported_metrics(exposition: dict[str, set[str]]) -> None:
    dashboard = load_dashboard()
    by_panel: dict[str, set[str]] = {}
    for title, expr in dashboard_targets(dashboard):
        expr = substitute_grafana_variables(expr, GRAFANA_VARIABLES)
        by_panel.setdefault(title, set()).update(check_expression(expr, exposition, title))
    for name, selector in template_variable_queries(dashboard):
        check_expression(selector, exposition, f"variable {name}")
    used = set().union(*by_panel.values())
    # The list: throughput by outcome, batch size, stage durations, e2e p50/p99, lag
    # per partition, the model build in service.
    assert used >= {
        "scorer_messages_total",
        "scorer_batch_size_bucket",
        "scorer_batch_duration_seconds_bucket",
        "scorer_end_to_end_latency_seconds_bucket",
        "scorer_consumer_lag",
        "scorer_model_info",
    }
    exprs = " ".join(expr for _, expr in dashboard_targets(dashboard))
    for needle in (
        "sum by (outcome)",
        "by (topic, partition)",
        "by (stage, le)",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.99,",
    ):
        assert needle in exprs, needle


def test_rendered_dashboard_is_the_file(consumer_overlay: str, rendered: RenderFn) -> None:
    (config_map,) = [
        cm
        for cm in rendered(consumer_overlay).of_kind("ConfigMap")
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    (content,) = config_map["data"].values()
    assert json.loads(content) == load_dashboard()


def test_rendered_rules_are_the_file(consumer_overlay: str, rendered: RenderFn) -> None:
    rule = rendered(consumer_overlay).one("PrometheusRule")
    assert rule["spec"] == {"groups": rule_groups()}
