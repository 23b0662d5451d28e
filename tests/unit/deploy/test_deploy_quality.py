"""The quality monitor's manifests (quality-*.yaml): the scorer's image with its own command,
probes and a Service on the port it listens on, an environment its own loader reads, the
registry where training writes, and a Kafka principal that only reads its topics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from quality.settings import QualitySettings, load_settings
from scoring.settings import environment_names
from tests.unit.deploy.conftest import K8S_DIR, SCORER, render
from tests.unit.deploy.test_deploy_serve import container_of, environment, pod_of

Rendered = Any  # conftest.Rendered
RenderFn = Callable[[str], Rendered]
QUALITY = "shopper-intent-quality"


def quality_settings(out: Rendered) -> QualitySettings:
    environ = environment(out, QUALITY)
    stand_ins = {name: "/dev/null" for name in environ if name.endswith("_FILE")}
    return load_settings({**environ, **stand_ins})


def test_the_monitor_is_deployed_from_the_scorers_image(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    out = rendered(consumer_overlay)
    for kind in ("Deployment", "Service", "ServiceMonitor"):
        out.one(kind, QUALITY)
    container = container_of(out, QUALITY)
    assert container["command"] == ["python", "-m", "quality"]
    assert container["image"] == container_of(out, SCORER)["image"]


def test_every_env_name_is_one_the_monitor_reads(consumer_overlay: str, rendered: RenderFn) -> None:
    out = rendered(consumer_overlay)
    known = environment_names(QualitySettings)
    for name in environment(out, QUALITY):
        base = name.removesuffix("_FILE")
        assert base in known or QualitySettings.read_by_convention(base), (
            f"{consumer_overlay}: the monitor does not read {name}"
        )
    settings = quality_settings(out)
    container = container_of(out, QUALITY)
    port = container["ports"][0]
    assert settings.metrics_port == port["containerPort"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": port["name"]}
    service = out.one("Service", QUALITY)["spec"]
    assert service["ports"][0]["targetPort"] == port["name"]
    assert service["selector"] == out.one("Deployment", QUALITY)["spec"]["selector"]["matchLabels"]


def test_the_promises_are_read_where_training_writes_the_builds(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    out = rendered(consumer_overlay)
    registry = quality_settings(out).quality_model_registry
    model_uri = environment(out, SCORER)["MODEL_URI"]
    assert registry is not None
    if registry.startswith("s3://"):
        assert model_uri.startswith(registry.rstrip("/") + "/")
    else:
        mounts = {m["mountPath"]: m for m in container_of(out, QUALITY)["volumeMounts"]}
        assert mounts[registry]["readOnly"] is True
        assert model_uri.startswith(f"file://{registry}/")
        volumes = {v["name"]: v for v in pod_of(out, QUALITY)["volumes"]}
        claim = volumes[mounts[registry]["name"]]["persistentVolumeClaim"]["claimName"]
        assert claim == "shopper-intent-registry"


@pytest.mark.parametrize("overlay_name", ["dev", "prod"])
def test_the_monitors_kafka_secret_is_its_own(overlay_name: str, rendered: RenderFn) -> None:
    out = rendered(overlay_name)
    volumes = pod_of(out, QUALITY)["volumes"]
    secrets = {v["secret"]["secretName"] for v in volumes if "secret" in v}
    assert "quality-kafka-credentials" in secrets
    assert not {s for s in secrets if "signing" in s}


def test_the_monitors_kafka_user_only_reads_its_topics_and_group() -> None:
    lines = (K8S_DIR / "base" / "quality.env").read_text(encoding="utf-8").splitlines()
    env = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    (user,) = [u for u in render(K8S_DIR / "kafka") if u["metadata"]["name"] == QUALITY]
    granted = {
        (acl["resource"]["type"], acl["resource"]["name"], operation)
        for acl in user["spec"]["authorization"]["acls"]
        for operation in acl["operations"]
    }
    assert granted == {
        ("topic", env["SCORES_TOPIC"], "Read"),
        ("topic", env["SCORES_TOPIC"], "Describe"),
        ("topic", env["OUTCOME_TOPIC"], "Read"),
        ("topic", env["OUTCOME_TOPIC"], "Describe"),
        ("group", env["QUALITY_CONSUMER_GROUP"], "Read"),
    }
