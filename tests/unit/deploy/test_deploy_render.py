"""Every kustomize overlay renders and validates; the rendered objects keep the deploy rules."""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.unit.deploy.conftest import SCORER, SERVE

REPO_ROOT = Path(__file__).resolve().parents[3]
K8S_DIR = REPO_ROOT / "deploy" / "k8s"

# The oldest Kubernetes the manifests promise to work on, and the newest bundled schema.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
EXPECTED_OVERLAYS = {"dev", "dev/train", "prod", "prod/train", "prod-keda"}
BUILD_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")

Manifest = dict[str, Any]
Rendered = Any  # conftest.Rendered: .overlay, .docs, .of_kind(kind), .one(kind)
RenderFn = Callable[[str], Rendered]
Schemas = dict[tuple[str, str], dict[str, Any]]


def validate(doc: Manifest, crd_schemas: Schemas) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in crd_schemas:
        jsonschema.Draft202012Validator(crd_schemas[key]).validate(doc)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def pod_specs(rendered: Rendered) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload in an overlay."""
    specs = []
    for doc in rendered.docs:
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "Job"):
            specs.append((f"{doc['kind']}/{doc['metadata']['name']}", spec["template"]["spec"]))
        elif doc["kind"] == "CronJob":
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
            specs.append((f"CronJob/{doc['metadata']['name']}", pod))
    return specs


def test_the_overlays_are_the_expected_ones(overlay: str) -> None:
    assert overlay in EXPECTED_OVERLAYS
    assert (K8S_DIR / "overlays" / overlay / "kustomization.yaml").is_file()


@pytest.mark.parametrize("name", sorted(EXPECTED_OVERLAYS))
def test_expected_overlay_exists(name: str) -> None:
    assert (K8S_DIR / "overlays" / name / "kustomization.yaml").is_file(), name


def test_overlay_renders_and_validates(
    overlay: str, rendered: RenderFn, crd_schemas: Schemas
) -> None:
    out = rendered(overlay)
    for doc in out.docs:
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        try:
            validate(doc, crd_schemas)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{where} is invalid: {exc}")
        assert doc["metadata"].get("namespace"), f"{where} has no namespace"


def test_validation_rejects_broken_objects(rendered: RenderFn, crd_schemas: Schemas) -> None:
    """The validators are not vacuous: a misspelt field and a bad duration are refused."""
    prod = rendered("prod")
    deployment = copy.deepcopy(prod.one("Deployment", SCORER))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbes"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, crd_schemas)
    rule = copy.deepcopy(prod.one("PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    with pytest.raises(jsonschema.ValidationError):
        validate(rule, crd_schemas)


def test_consumer_overlay_has_every_part(consumer_overlay: str, rendered: RenderFn) -> None:
    out = rendered(consumer_overlay)
    for kind in ("CronJob", "PrometheusRule"):
        assert out.of_kind(kind), f"{consumer_overlay} renders no {kind}"
    for workload in (SCORER, SERVE):
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"):
            out.one(kind, workload)
    out.one("HorizontalPodAutoscaler", SERVE)
    if model_uri_of(out).startswith("s3://"):
        # Builds and data live in the bucket: no volume at all, ReadWriteMany or other.
        assert not out.of_kind("PersistentVolumeClaim"), consumer_overlay
    else:
        (registry,) = [
            pvc
            for pvc in out.of_kind("PersistentVolumeClaim")
            if pvc["metadata"]["name"] == "shopper-intent-registry"
        ]
        assert registry["spec"]["accessModes"] == ["ReadWriteMany"]
    dashboards = [
        cm
        for cm in out.of_kind("ConfigMap")
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert len(dashboards) == 1
    if "keda" in consumer_overlay:
        assert (
            out.one("ScaledObject")["spec"]["scaleTargetRef"]["name"]
            == (out.one("Deployment", SCORER)["metadata"]["name"])
        )
        assert "replicas" not in out.one("Deployment", SCORER)["spec"], "KEDA owns the replicas"


def test_train_overlay_holds_only_the_job(rendered: RenderFn) -> None:
    for env in ("dev", "prod"):
        kinds = [doc["kind"] for doc in rendered(f"{env}/train").docs]
        assert kinds == ["Job"]


def test_replicas_never_exceed_input_partitions(consumer_overlay: str, rendered: RenderFn) -> None:
    out = rendered(consumer_overlay)
    deployment = out.one("Deployment", SCORER)
    partitions = int(
        deployment["metadata"]["annotations"]["shopper-intent.io/input-topic-partitions"]
    )
    replicas = deployment["spec"].get("replicas")
    if replicas is not None:
        assert 1 <= replicas <= partitions
    for scaled in out.of_kind("ScaledObject"):
        spec = scaled["spec"]
        assert spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
        assert spec["triggers"][0]["metadata"]["allowIdleConsumers"] == "false"
    pdb = out.one("PodDisruptionBudget", SCORER)["spec"]
    assert pdb["selector"] == deployment["spec"]["selector"]


def test_workloads_are_locked_down(overlay: str, rendered: RenderFn, repo_root: Path) -> None:
    uid = dockerfile_uid(repo_root / "Dockerfile")
    specs = pod_specs(rendered(overlay))
    assert specs
    for where, pod in specs:
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] == uid, where
        assert pod["automountServiceAccountToken"] is False, where
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, where
            image = container["image"]
            assert ":" in image, f"{where}: pin a tag on {image}"
            assert not image.endswith(":latest"), f"{where}: pin a tag on {image}"
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"


def dockerfile_uid(dockerfile: Path) -> int:
    users = re.findall(r"^USER\s+(\d+)", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    assert users, "the Dockerfile's final USER must be numeric"
    return int(users[-1].split(":")[0])


# What only one of the two training pods has: the Job reads its data set from the data volume
# (dev); the CronJob's cycle reads Kafka as its own principal and checks the builds it compares
# with the scorers' trusted keys (prod).
JOB_ONLY_VOLUMES = {"data"}
CRONJOB_ONLY_VOLUMES = {"kafka-credentials", "trusted-keys"}


def test_training_job_shares_the_cronjob_pod(rendered: RenderFn, repo_root: Path) -> None:
    """training/job.yaml trains one build from a named data set (an environment's first build);
    the CronJob runs the retraining cycle. They differ in what they run and read, nothing else:
    the same image, pod and container security, resources, registry and, in prod, signing key
    and object store; the Job writes its build where the cycle's registry is."""
    scripts = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    for env in ("dev", "prod"):
        cron = rendered(env).one("CronJob")["spec"]["jobTemplate"]["spec"]
        job = rendered(f"{env}/train").one("Job")["spec"]
        for key in ("backoffLimit", "ttlSecondsAfterFinished", "podFailurePolicy"):
            assert job.get(key) == cron.get(key), f"{env}: {key}"
        assert job["template"]["metadata"] == cron["template"]["metadata"], env
        job_pod, cron_pod = job["template"]["spec"], cron["template"]["spec"]
        assert set(job_pod) == set(cron_pod), env
        for key in set(job_pod) - {"containers", "volumes"}:
            assert job_pod[key] == cron_pod[key], f"{env}: pod {key}"
        (job_c,), (cron_c,) = job_pod["containers"], cron_pod["containers"]
        for key in ("name", "image", "imagePullPolicy", "command", "resources", "securityContext"):
            assert job_c[key] == cron_c[key], f"{env}: container {key}"
        assert job_c["command"][0] in scripts
        assert cron_c["args"][0] == "cycle", env
        assert job_c["args"][0] == "--data", env
        assert (
            job_c["image"]
            == rendered(env).one("Deployment", SCORER)["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
        ), f"{env}: training and serving must run the same image"
        # The signing key and the store's settings: what the Job has, the CronJob has too.
        assert all(entry in cron_c.get("env", []) for entry in job_c.get("env", [])), env
        assert all(ref in cron_c.get("envFrom", []) for ref in job_c.get("envFrom", [])), env
        job_volumes = {v["name"]: v for v in job_pod["volumes"]}
        cron_volumes = {v["name"]: v for v in cron_pod["volumes"]}
        assert set(job_volumes) - set(cron_volumes) <= JOB_ONLY_VOLUMES, env
        assert set(cron_volumes) - set(job_volumes) <= CRONJOB_ONLY_VOLUMES, env
        shared = set(job_volumes) & set(cron_volumes)
        assert "tmp" in shared, env
        for name in shared:
            assert job_volumes[name] == cron_volumes[name], f"{env}: volume {name}"
            assert [m for m in job_c["volumeMounts"] if m["name"] == name] == [
                m for m in cron_c["volumeMounts"] if m["name"] == name
            ], f"{env}: the mount of {name}"
        assert option(job_c["args"], "--out") == option(cron_c["args"], "--registry"), env


def option(args: list[str], name: str) -> str:
    """The value after ``name`` in a container's args (there must be exactly one)."""
    assert args.count(name) == 1, f"{name} in {args}"
    return args[args.index(name) + 1]


@pytest.mark.parametrize("workload", [SCORER, SERVE])
def test_training_writes_where_the_consumer_reads(
    consumer_overlay: str, workload: str, rendered: RenderFn
) -> None:
    """Where the retraining cycle writes builds is where the consumer and the front door read
    MODEL_URI."""
    out = rendered(consumer_overlay)
    train_pod = out.one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    serve_pod = out.one("Deployment", workload)["spec"]["template"]["spec"]

    def claim_mounts(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        }
        mounts = pod["containers"][0]["volumeMounts"]
        return {claims[m["name"]]: m for m in mounts if m["name"] in claims}

    model_uri = model_uri_of(out)
    registry_arg = option(train_pod["containers"][0]["args"], "--registry")
    if model_uri.startswith("s3://"):
        _check_object_store(out, train_pod, serve_pod, registry_arg, model_uri)
        return
    train, serve = claim_mounts(train_pod), claim_mounts(serve_pod)
    registry = "shopper-intent-registry"
    assert not train[registry].get("readOnly", False)
    assert serve[registry]["readOnly"] is True
    assert registry_arg == train[registry]["mountPath"]
    assert model_uri.startswith(f"file://{serve[registry]['mountPath']}/")
    build_id, artifact = model_uri.split("/")[-2:]
    assert BUILD_ID.match(build_id), f"{model_uri}: not a build id"
    assert artifact in ("best_model_full.joblib", "best_model_no_page_values.joblib")


def _check_object_store(
    out: Rendered, train_pod: Manifest, serve_pod: Manifest, registry: str, model_uri: str
) -> None:
    """The cycle writes builds under --registry; the consumer's MODEL_URI names one of them; both
    pods read the store's settings from one ConfigMap and the credentials from one Secret; the
    consumer downloads into a writable emptyDir that MODEL_CACHE_DIR names."""
    build_id, artifact = model_uri.removeprefix(registry + "/").split("/")
    assert BUILD_ID.match(build_id), f"{model_uri}: not a build id under {registry}"
    assert artifact in ("best_model_full.joblib", "best_model_no_page_values.joblib")

    def store_sources(pod: Manifest) -> tuple[set[str], set[str]]:
        maps = {
            ref["configMapRef"]["name"]
            for ref in pod["containers"][0].get("envFrom", [])
            if "configMapRef" in ref
        }
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        return {m for m in maps if "object-store" in m}, {s for s in secrets if "s3" in s}

    assert store_sources(train_pod) == store_sources(serve_pod)
    (store_map,) = store_sources(serve_pod)[0]
    assert any(cm["metadata"]["name"] == store_map for cm in out.of_kind("ConfigMap"))
    sources = {
        ref["configMapRef"]["name"]
        for ref in serve_pod["containers"][0].get("envFrom", [])
        if "configMapRef" in ref
    }
    (cache,) = [
        cm["data"]["MODEL_CACHE_DIR"]
        for cm in out.of_kind("ConfigMap")
        if cm["metadata"]["name"] in sources and "MODEL_CACHE_DIR" in cm.get("data", {})
    ]
    mounts = {m["mountPath"]: m for m in serve_pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in serve_pod["volumes"]}
    assert "emptyDir" in volumes[mounts[cache]["name"]]
    assert not mounts[cache].get("readOnly", False)


def model_uri_of(out: Rendered) -> str:
    holders = [cm for cm in out.of_kind("ConfigMap") if "MODEL_URI" in cm.get("data", {})]
    assert len(holders) == 1, f"{out.overlay}: MODEL_URI must be in exactly one ConfigMap"
    value: str = holders[0]["data"]["MODEL_URI"]
    return value


def test_model_uri_is_set_in_exactly_one_place(consumer_overlay: str, rendered: RenderFn) -> None:
    """Rolling back is one edit: one file per environment sets MODEL_URI, nothing overrides it."""
    out = rendered(consumer_overlay)
    model_uri_of(out)
    for name in (SCORER, SERVE):
        container = out.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert all(env["name"] != "MODEL_URI" for env in container.get("env", []))
    sources = sorted(
        str(path.relative_to(K8S_DIR))
        for path in K8S_DIR.rglob("*")
        if path.is_file() and re.search(r"^\s*-?\s*MODEL_URI\s*[=:]", path.read_text(), re.M)
    )
    assert sources == ["overlays/dev/model.env", "overlays/prod/model.env"]
    for source in sources:
        lines = (K8S_DIR / source).read_text(encoding="utf-8").strip().splitlines()
        assert len([line for line in lines if line.startswith("MODEL_URI=")]) == 1
