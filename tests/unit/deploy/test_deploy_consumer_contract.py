"""The manifests speak the consumer's language: env names, values, ports and probe paths are the
ones consumer/settings.py reads and consumer/health.py serves (both sides are read here)."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import pytest
from prometheus_client import CollectorRegistry

from consumer.health import HealthState
from consumer.settings import Settings, load_settings
from scoring.probes import ProbeServer
from scoring.settings import environment_names
from tests.unit.deploy.conftest import SCORER

Rendered = Any  # conftest.Rendered
RenderFn = Callable[[str], Rendered]

FIELD_ENV_NAMES = environment_names(Settings)  # fields, the object store's AWS_*, deprecated names
REQUIRED_ENV_NAMES = {
    name.upper() for name, info in Settings.model_fields.items() if info.is_required()
}


def scorer_container(out: Rendered) -> dict[str, Any]:
    containers: list[dict[str, Any]] = out.one("Deployment", SCORER)["spec"]["template"]["spec"][
        "containers"
    ]
    assert len(containers) == 1
    return containers[0]


def container_environment(out: Rendered) -> dict[str, str]:
    """What the scorer process sees: envFrom ConfigMaps/Secrets, then explicit env entries."""
    container = scorer_container(out)
    config_maps = {cm["metadata"]["name"]: cm.get("data", {}) for cm in out.of_kind("ConfigMap")}
    secrets = {s["metadata"]["name"]: s.get("stringData", {}) for s in out.of_kind("Secret")}
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in config_maps, f"{out.overlay}: envFrom names a missing ConfigMap {name}"
            environ.update(config_maps[name])
        else:
            environ.update(secrets.get(source["secretRef"]["name"], {}))
    for entry in container.get("env", []):
        environ[entry["name"]] = entry.get("value", "<from valueFrom>")
    return environ


def test_every_env_name_is_one_the_consumer_reads(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    environ = container_environment(rendered(consumer_overlay))
    for name in environ:
        base = name.removesuffix("_FILE")
        known = (
            name in FIELD_ENV_NAMES
            or name.startswith("KAFKA_")
            or (name.endswith("_FILE") and (base in FIELD_ENV_NAMES or base.startswith("KAFKA_")))
        )
        assert known, f"{consumer_overlay}: {name} is not a Settings field, KAFKA_* or *_FILE"
    missing = REQUIRED_ENV_NAMES - set(environ)
    assert not missing, f"{consumer_overlay}: required settings not set: {sorted(missing)}"


@pytest.fixture
def settings_of(tmp_path: Path) -> Callable[[Rendered], Settings]:
    """Load the rendered environment with the real ``load_settings``; ``*_FILE`` paths must lie
    in a mounted Secret and are redirected to stand-in files."""

    def load(out: Rendered) -> Settings:
        environ = container_environment(out)
        secret_files = secret_file_paths(out)
        for name, value in list(environ.items()):
            if name.endswith("_FILE"):
                assert value in secret_files, f"{name}={value} is not a key of a mounted Secret"
                stand_in = tmp_path / name
                stand_in.write_text("stand-in-secret\n", encoding="utf-8")
                environ[name] = str(stand_in)
        return load_settings(environ)

    return load


def secret_file_paths(out: Rendered) -> set[str]:
    pod = out.one("Deployment", SCORER)["spec"]["template"]["spec"]
    secret_volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    paths = set()
    for mount in scorer_container(out)["volumeMounts"]:
        secret = secret_volumes.get(mount["name"])
        if secret is None:
            continue
        assert mount["readOnly"] is True
        for item in secret["items"]:
            paths.add(str(PurePosixPath(mount["mountPath"]) / item["path"]))
    return paths


def test_rendered_settings_load(
    consumer_overlay: str, rendered: RenderFn, settings_of: Callable[[Rendered], Settings]
) -> None:
    out = rendered(consumer_overlay)
    settings = settings_of(out)
    assert settings.librdkafka_properties()["sasl.password"] == "stand-in-secret"
    assert PurePosixPath(urlparse(settings.model_uri).path).name.startswith("best_model_")


def test_ports_match_metrics_port(
    consumer_overlay: str, rendered: RenderFn, settings_of: Callable[[Rendered], Settings]
) -> None:
    out = rendered(consumer_overlay)
    settings = settings_of(out)
    ports = {p["name"]: p["containerPort"] for p in scorer_container(out)["ports"]}
    assert ports == {"metrics": settings.metrics_port}
    service = out.one("Service", SCORER)
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ("metrics", settings.metrics_port)
    assert service["spec"]["selector"].items() <= (
        out.one("Deployment", SCORER)["spec"]["template"]["metadata"]["labels"].items()
    )
    endpoints = out.one("ServiceMonitor", SCORER)["spec"]["endpoints"]
    assert {e["port"] for e in endpoints} == {service_port["name"]}
    monitor_selector = out.one("ServiceMonitor", SCORER)["spec"]["selector"]["matchLabels"]
    assert monitor_selector.items() <= service["metadata"]["labels"].items()


def test_grace_period_outlasts_the_shutdown_bound(
    consumer_overlay: str, rendered: RenderFn, settings_of: Callable[[Rendered], Settings]
) -> None:
    out = rendered(consumer_overlay)
    settings = settings_of(out)
    grace = out.one("Deployment", SCORER)["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    # Some margin for the process to exit after the bound: at least 5 s longer.
    assert grace >= settings.shutdown_timeout_s + 5


@pytest.fixture(scope="module")
def health_server() -> Iterator[int]:
    """The consumer's real HTTP side on a free local port."""
    state = HealthState(liveness_timeout_s=60.0)
    server = ProbeServer(state.alive, state.ready, CollectorRegistry(), "127.0.0.1", 0)
    server.start()
    yield server.port
    server.stop()


def get_status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_probe_and_scrape_paths_are_served(
    consumer_overlay: str, rendered: RenderFn, health_server: int
) -> None:
    out = rendered(consumer_overlay)
    container = scorer_container(out)
    paths = {"/metrics"} | {
        e["path"] for e in out.one("ServiceMonitor", SCORER)["spec"]["endpoints"]
    }
    probes = [key for key in container if key.endswith("Probe")]
    assert {"livenessProbe", "readinessProbe"} <= set(probes)
    for probe in probes:
        get = container[probe]["httpGet"]
        assert get["port"] in ("metrics", container["ports"][0]["containerPort"])
        paths.add(get["path"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert get_status(health_server, "/no-such-path") == 404
    for path in sorted(paths):
        # /readyz answers 503 before the gates pass; what matters is that the path exists.
        assert get_status(health_server, path) in (200, 503), path
