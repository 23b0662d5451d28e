"""The deploy/ observability files read for tests: alert rules, dashboard queries, PromQL selectors.

Shared by the unit tests (names and labels against the consumer's exposition; promtool alert
tests) and the integration test that runs every query on a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_args

import promql_parser
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from consumer.metrics import Outcome, ScorerMetrics, Stage
from quality.metrics import QualityMetrics

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE = REPO_ROOT / "deploy" / "k8s" / "base"
RULES_FILE = BASE / "prometheusrule.yaml"
DASHBOARD_FILE = BASE / "dashboards" / "shopper-intent.json"
# Labels Prometheus attaches to every scraped sample (target labels), not the consumer.
TARGET_LABELS = {"job", "namespace", "pod", "instance", "service", "container", "endpoint"}
# Values the consumer gives its enumerated labels.
LABEL_VALUES = {"outcome": set(get_args(Outcome)), "stage": set(get_args(Stage))}


def exported_samples() -> dict[str, set[str]]:
    """Sample name -> its label names, from a real ``generate_latest`` of ScorerMetrics and of
    the quality monitor's QualityMetrics (each on its own registry, as each process has).

    Labelled metrics without children expose no sample, so each gets one child first.
    """
    samples: dict[str, set[str]] = {}
    metrics = ScorerMetrics.create(CollectorRegistry())
    quality = QualityMetrics.create(CollectorRegistry())
    for holder in (metrics, metrics.runtime, quality):  # the consumer's, the runtime's, quality's
        for item in fields(holder):
            metric = getattr(holder, item.name)
            if isinstance(metric, MetricWrapperBase) and metric._labelnames:
                metric.labels(*("0" for _ in metric._labelnames))
    for registry in (metrics.registry, quality.registry):
        text = generate_latest(registry).decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


@dataclass(frozen=True)
class Selector:
    name: str
    labels: dict[str, str]


def selectors(expr: str) -> list[Selector]:
    """Parse ``expr`` (ValueError if it is not PromQL) and return its vector selectors."""
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            labels = {m.name: m.value for m in node.matchers.matchers}
            found.append(Selector(node.name, labels))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def check_selectors(expr: str, exposition: dict[str, set[str]], where: str) -> set[str]:
    """Assert every metric ``expr`` selects is exported with the labels it matches; return names.

    Raises ValueError when ``expr`` is not PromQL.
    """
    found = selectors(expr)
    assert found, f"{where}: selects no metric"
    for selector in found:
        assert selector.name in exposition, (
            f"{where}: {selector.name} is not exported by the consumer "
            f"(exported samples: {sorted(exposition)})"
        )
        unknown = set(selector.labels) - exposition[selector.name] - TARGET_LABELS
        assert not unknown, f"{where}: {selector.name} has no label {sorted(unknown)}"
        for label, allowed in LABEL_VALUES.items():
            if label in selector.labels:
                assert selector.labels[label] in allowed, f"{where}: {label}={selector.labels}"
    return {selector.name for selector in found}


def rule_groups() -> list[dict[str, Any]]:
    """The PrometheusRule's ``spec.groups``: a Prometheus rule file's ``groups``."""
    rule_doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    groups: list[dict[str, Any]] = rule_doc["spec"]["groups"]
    return groups


def alert_rules() -> Iterator[dict[str, Any]]:
    for group in rule_groups():
        yield from (rule for rule in group["rules"] if "alert" in rule)


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return dashboard


def dashboard_targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, query) for every query of every panel."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def is_quality_query(expr: str) -> bool:
    """Whether a query reads the quality monitor's metrics (the dashboard's "Live quality" row)."""
    return any(
        selector.name.startswith("quality_")
        for selector in selectors(
            substitute_grafana_variables(expr, {"$__rate_interval": "1m", "$namespace": "ns"})
        )
    )


def substitute_grafana_variables(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana's variables replaced by ``values``; an unknown variable fails."""
    for variable in sorted(values, key=len, reverse=True):
        expr = expr.replace(variable, values[variable])
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def template_variable_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(variable name, the series selector inside its ``label_values(...)``)."""
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
            assert inner, variable["definition"]
            yield variable["name"], inner.group(1)


def prometheus_binary(name: str) -> Path:
    """``/usr/bin/prometheus`` or ``/usr/bin/promtool`` (Debian's package); a clear failure when
    missing: ``make prometheus`` installs it, and ``make test`` runs that first."""
    path = Path("/usr/bin") / name
    assert path.is_file(), f"{path} is missing: run `make prometheus` (Debian's prometheus package)"
    return path
