"""The HTTP front door's manifests (serve-*.yaml): the same image as the consumer with its own
command, probes on /healthz and /readyz on the port it serves, resources the CPU autoscaler can
work with, a disruption budget and a Service that select its pods only, and the consumer's
security context."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scoring.settings import environment_names
from serve.settings import ServeSettings, load_serve_settings
from tests.unit.deploy.conftest import SCORER, SERVE

Rendered = Any  # conftest.Rendered
RenderFn = Callable[[str], Rendered]
Manifest = dict[str, Any]

PRE_STOP_MARGIN_S = 5  # beyond preStop and the drain bound, for the process to exit


def pod_of(out: Rendered, name: str) -> Manifest:
    pod: Manifest = out.one("Deployment", name)["spec"]["template"]["spec"]
    return pod


def container_of(out: Rendered, name: str) -> Manifest:
    containers: list[Manifest] = pod_of(out, name)["containers"]
    assert len(containers) == 1, name
    return containers[0]


def environment(out: Rendered, name: str) -> dict[str, str]:
    """What the container's process sees from its envFrom ConfigMaps and env entries."""
    config_maps = {cm["metadata"]["name"]: cm.get("data", {}) for cm in out.of_kind("ConfigMap")}
    environ: dict[str, str] = {}
    container = container_of(out, name)
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"{name}: only ConfigMaps in envFrom"
        ref = source["configMapRef"]["name"]
        assert ref in config_maps, f"{out.overlay}: {name} reads a missing ConfigMap {ref}"
        environ.update(config_maps[ref])
    for entry in container.get("env", []):
        environ[entry["name"]] = entry.get("value", "<from valueFrom>")
    return environ


def serve_settings(out: Rendered) -> ServeSettings:
    """The rendered environment read by serve's own loader; each *_FILE secret (mounted from a
    Secret, checked in test_deploy_render) is read from an empty stand-in."""
    environ = environment(out, SERVE)
    stand_ins = {name: "/dev/null" for name in environ if name.endswith("_FILE")}
    return load_serve_settings({**environ, **stand_ins})


def test_one_image_two_commands(consumer_overlay: str, rendered: RenderFn, repo_root: Path) -> None:
    """The front door runs the consumer's image; `command` picks `python -m serve`, a package
    the image installs (the Dockerfile copies it and setuptools packages it)."""
    out = rendered(consumer_overlay)
    scorer, serve = container_of(out, SCORER), container_of(out, SERVE)
    assert serve["image"] == scorer["image"]
    assert serve["command"] == ["python", "-m", "serve"]
    scripts = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert scorer["command"][0] in scripts
    assert "args" not in serve
    assert (repo_root / "serve" / "__main__.py").is_file()
    dockerfile = (repo_root / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY serve/ serve/$", dockerfile, re.MULTILINE)
    packaged = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["packages"]["find"]["include"]
    assert "serve*" in packaged, "pyproject: the image installs only the packages listed there"


def test_probes_and_ports_are_the_ones_serve_listens_on(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    out = rendered(consumer_overlay)
    container = container_of(out, SERVE)
    environ = environment(out, SERVE)
    (port,) = container["ports"]
    assert port["name"] == "http"
    assert port["containerPort"] == int(environ["SERVE_PORT"])
    assert environ["SERVE_HOST"] == "0.0.0.0", "the kubelet probes the pod's IP"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # Model loading may take long (an s3:// download): a startup probe guards it, not liveness.
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", port["containerPort"]), probe
        assert container[probe]["timeoutSeconds"] <= container[probe]["periodSeconds"], probe

    service = out.one("Service", SERVE)
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ("http", port["containerPort"])
    labels = out.one("Deployment", SERVE)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    monitor = out.one("ServiceMonitor", SERVE)["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [(e["port"], e["path"]) for e in monitor["endpoints"]] == [
        (service_port["name"], "/metrics")
    ]


def test_model_settings_come_from_the_consumers_one_place(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    """MODEL_URI (and in prod the signature and cache settings) are what the consumer uses:
    promoting or rolling back a build moves both front doors at once."""
    out = rendered(consumer_overlay)
    scorer, serve = environment(out, SCORER), environment(out, SERVE)
    assert serve["MODEL_URI"] == scorer["MODEL_URI"]
    for name in ("REQUIRE_SIGNED_MODEL", "MODEL_TRUSTED_KEYS", "MODEL_CACHE_DIR"):
        assert serve.get(name) == scorer.get(name), name
    assert not {name for name in serve if name.startswith("KAFKA_")}, "serve reads no Kafka"
    if "MODEL_TRUSTED_KEYS" in serve:
        mounts = [m["mountPath"] for m in container_of(out, SERVE)["volumeMounts"]]
        assert any(Path(serve["MODEL_TRUSTED_KEYS"]).is_relative_to(path) for path in mounts)


def test_the_autoscaler_owns_the_replicas_and_scales_on_cpu(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    out = rendered(consumer_overlay)
    deployment = out.one("Deployment", SERVE)
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpa = out.one("HorizontalPodAutoscaler", SERVE)["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # Utilization is relative to requests.cpu: without one the HPA cannot compute it.
    resources = container_of(out, SERVE)["resources"]
    assert resources["requests"]["cpu"]
    assert cpu_cores(resources["requests"]["cpu"]) <= cpu_cores(resources["limits"]["cpu"])
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0, "a rollout adds a pod before it takes one away"
    if "prod" in consumer_overlay:
        assert hpa["minReplicas"] >= 2, "prod survives one pod's loss"


def cpu_cores(quantity: str | int) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def test_the_budget_and_the_selectors_keep_the_two_workloads_apart(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    out = rendered(consumer_overlay)
    deployment = out.one("Deployment", SERVE)
    pdb = out.one("PodDisruptionBudget", SERVE)["spec"]
    assert pdb["selector"] == deployment["spec"]["selector"]
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable") is not None
    pods = {
        name: out.one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        for name in (SCORER, SERVE)
    }
    for name, other in ((SCORER, SERVE), (SERVE, SCORER)):
        for selector in (
            out.one("Deployment", name)["spec"]["selector"]["matchLabels"],
            out.one("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"],
            out.one("Service", name)["spec"]["selector"],
        ):
            assert selector.items() <= pods[name].items(), name
            assert not selector.items() <= pods[other].items(), f"{name} selects {other}'s pods"


def test_security_context_is_the_consumers(consumer_overlay: str, rendered: RenderFn) -> None:
    out = rendered(consumer_overlay)
    scorer, serve = pod_of(out, SCORER), pod_of(out, SERVE)
    assert serve["securityContext"] == scorer["securityContext"]
    assert serve["automountServiceAccountToken"] is False
    assert serve["serviceAccountName"] == scorer["serviceAccountName"]
    assert (
        container_of(out, SERVE)["securityContext"] == container_of(out, SCORER)["securityContext"]
    )
    # The front door needs no Kafka credentials and never the training signing key.
    secrets = {v["secret"]["secretName"] for v in serve["volumes"] if "secret" in v}
    assert not {s for s in secrets if "kafka" in s or "signing" in s}, secrets


def test_shutdown_drains_within_the_grace_period(consumer_overlay: str, rendered: RenderFn) -> None:
    out = rendered(consumer_overlay)
    pod, container = pod_of(out, SERVE), container_of(out, SERVE)
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain_s = serve_settings(out).serve_shutdown_timeout_s
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain_s + PRE_STOP_MARGIN_S


def test_every_env_name_is_one_serve_reads(consumer_overlay: str, rendered: RenderFn) -> None:
    """Each variable is a ServeSettings field (SERVE_*, the model's, LOG_*), the object store's
    AWS_* or a *_FILE of one; and the rendered environment loads with serve's own loader."""
    out = rendered(consumer_overlay)
    environ = environment(out, SERVE)
    known = environment_names(ServeSettings)
    for name in environ:
        assert name in known or (name.endswith("_FILE") and name.removesuffix("_FILE") in known), (
            f"{consumer_overlay}: serve does not read {name}"
        )
    settings = serve_settings(out)
    assert settings.serve_port == container_of(out, SERVE)["ports"][0]["containerPort"]
    assert settings.model_uri == environ["MODEL_URI"]
