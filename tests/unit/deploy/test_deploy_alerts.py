"""The alerts, run: ``promtool check rules`` on the PrometheusRule's groups, and one promtool unit
test file per alert (tests/unit/deploy/alerts/<AlertName>.yaml) with a case in which it fires and
one in which it stays quiet. A new alert without its test file fails here."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability import alert_rules, check_selectors, prometheus_binary, rule_groups

ALERTS_DIR = Path(__file__).resolve().parent / "alerts"


def alert_test_files() -> list[Path]:
    return sorted(ALERTS_DIR.glob("*.yaml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prometheus_binary("promtool")), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/k8s/base/prometheusrule.yaml's groups as a plain Prometheus rule file."""
    path = tmp_path_factory.mktemp("rules") / "shopper-intent-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False), encoding="utf-8")
    return path


def test_promtool_check_rules_passes(rules_file: Path) -> None:
    result = promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(list(alert_rules()))} rules found" in result.stdout


def test_every_alert_has_a_test_file() -> None:
    alerts = {rule["alert"] for rule in alert_rules()}
    tested = {path.stem for path in alert_test_files()}
    untested = sorted(alerts - tested)
    assert not untested, (
        f"alerts without a promtool test: {untested}; add tests/unit/deploy/alerts/<Alert>.yaml "
        "with a case in which it fires and one in which it stays quiet (copy a neighbour)"
    )
    stale = sorted(tested - alerts)
    assert not stale, f"test files for alerts that prometheusrule.yaml no longer has: {stale}"


def fires_in(test: dict[str, Any]) -> bool:
    return any(case.get("exp_alerts") for case in test.get("alert_rule_test", []))


@pytest.mark.parametrize("test_file", alert_test_files(), ids=lambda path: path.stem)
def test_alert(
    test_file: Path, rules_file: Path, tmp_path: Path, exposition: dict[str, set[str]]
) -> None:
    spec = yaml.safe_load(test_file.read_text(encoding="utf-8"))
    assert "rule_files" not in spec, "the harness supplies rule_files (the PrometheusRule's groups)"
    tests = spec["tests"]
    named = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert named == {test_file.stem}, f"{test_file.name} must test {test_file.stem} only: {named}"
    assert any(fires_in(test) for test in tests), f"{test_file.name}: no test in which it fires"
    assert not all(fires_in(test) for test in tests), (
        f"{test_file.name}: no test in which it stays quiet"
    )
    for test in tests:
        for series in test.get("input_series", []):
            check_selectors(series["series"], exposition, f"{test_file.name} {test['name']!r}")

    runnable = tmp_path / test_file.name
    runnable.write_text(
        yaml.safe_dump({"rule_files": [str(rules_file)], **spec}, sort_keys=False),
        encoding="utf-8",
    )
    result = promtool("test", "rules", str(runnable))
    assert result.returncode == 0, (
        f"promtool test rules {test_file.name}:\n{result.stdout}{result.stderr}"
    )
