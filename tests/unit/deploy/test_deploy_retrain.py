"""The retraining CronJob runs the whole cycle (`shopper-train cycle`): its champion is the build
the scorers serve (the same ConfigMap), its collect reads Kafka as the consumer does with the
quality monitor's join rule (the same ConfigMaps), as a principal that only reads the two topics;
it writes where the scorers read, and the docs name the objects that exist."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from contract.brokers import connection_from_environment
from contract.durations import duration_seconds
from tests.unit.deploy.conftest import K8S_DIR, REPO_ROOT, SCORER, SERVE, render
from tests.unit.deploy.test_deploy_render import option, validate
from training.collect import RESERVED_PROPERTIES
from training.compare import Rule
from training.cycle import command_line

Rendered = Any  # conftest.Rendered
RenderFn = Callable[[str], Rendered]
Manifest = dict[str, Any]
Schemas = dict[tuple[str, str], dict[str, Any]]

RETRAIN = "shopper-intent-retrain"
QUALITY = "shopper-intent-quality"
RETRAIN_USER = "shopper-intent-retrain"
RETRAIN_SECRET = "retrain-kafka-credentials"
# The settings of the monitor's join rule (contract/join.py) the collect must share with it.
JOIN_RULE = ("OUTCOME_TOPIC", "OUTCOME_WINDOW", "MISSING_OUTCOME")
# Where each environment's cycle writes; everything else in its arguments is the team's policy.
WHERE_OPTIONS = ("--registry", "--datasets")


def cycle_container(out: Rendered) -> Manifest:
    (container,) = pod_of_cronjob(out)["containers"]
    container_: Manifest = container
    return container_


def pod_of_cronjob(out: Rendered) -> Manifest:
    pod: Manifest = out.one("CronJob", RETRAIN)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def deployment_container(out: Rendered, name: str) -> Manifest:
    (container,) = out.one("Deployment", name)["spec"]["template"]["spec"]["containers"]
    container_: Manifest = container
    return container_


def config_maps(out: Rendered) -> dict[str, dict[str, str]]:
    return {cm["metadata"]["name"]: cm.get("data", {}) for cm in out.of_kind("ConfigMap")}


def environment(out: Rendered, container: Manifest) -> dict[str, str]:
    """What the container's process sees: its envFrom ConfigMaps in order, then its env entries
    (a literal value or a configMapKeyRef), which win, as the kubelet does it."""
    maps = config_maps(out)
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"{out.overlay}: only ConfigMaps in envFrom"
        name = source["configMapRef"]["name"]
        assert name in maps, f"{out.overlay}: envFrom names a missing ConfigMap {name}"
        environ.update(maps[name])
    for entry in container.get("env", []):
        if "value" in entry:
            environ[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["configMapKeyRef"]
        assert ref["key"] in maps.get(ref["name"], {}), f"{out.overlay}: {entry} names nothing"
        environ[entry["name"]] = maps[ref["name"]][ref["key"]]
    return environ


def source_of(out: Rendered, container: Manifest, variable: str) -> tuple[str, str]:
    """(ConfigMap, key) the container's ``variable`` comes from (an env entry wins over envFrom;
    among envFrom sources the last one holding it wins)."""
    for entry in container.get("env", []):
        if entry["name"] == variable:
            ref = entry.get("valueFrom", {}).get("configMapKeyRef")
            assert ref is not None, f"{out.overlay}: {variable} is set in the manifest itself"
            return ref["name"], ref["key"]
    maps = config_maps(out)
    holders = [
        source["configMapRef"]["name"]
        for source in container.get("envFrom", [])
        if variable in maps[source["configMapRef"]["name"]]
    ]
    assert holders, f"{out.overlay}: nothing gives {variable}"
    return holders[-1], variable


def mounted_volume(pod: Manifest, path: str) -> tuple[Manifest, str]:
    """The volume holding file ``path`` in the pod's container, and the file's key in it."""
    for mount in pod["containers"][0].get("volumeMounts", []):
        root = PurePosixPath(mount["mountPath"])
        if root in PurePosixPath(path).parents:
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            return volume, str(PurePosixPath(path).relative_to(root))
    raise AssertionError(f"nothing is mounted at {path}")


def test_the_cronjob_runs_the_cycle_into_the_scorers_registry(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    out = rendered(consumer_overlay)
    container = cycle_container(out)
    args = container["args"]
    assert container["command"] == ["shopper-train"]
    assert args[0] == "cycle"
    options = {arg for arg in args[1:] if arg.startswith("--")}
    command_line({"MODEL_URI": "unused"}).parse_args(args[1:])  # exit 2 on an unknown option
    assert "--champion" not in options, "the champion is MODEL_URI, the build in service"
    assert duration_seconds(option(args, "--fresh")) < duration_seconds(option(args, "--since"))
    rules = [args[i + 1] for i, arg in enumerate(args) if arg == "--rule"]
    assert rules, "the promotion policy is written down, not left to a default"
    for rule in rules:
        Rule.parse(rule)
    registry = option(args, "--registry")
    model_uri = environment(out, deployment_container(out, SCORER))["MODEL_URI"]
    if registry.startswith("s3://"):
        assert model_uri.startswith(registry.rstrip("/") + "/")
        bucket = registry.split("/")[2]
        if "--datasets" in args:
            assert option(args, "--datasets").startswith(f"s3://{bucket}/")
    else:
        assert model_uri.startswith(f"file://{registry.rstrip('/')}/")
        mount = {m["mountPath"]: m for m in container["volumeMounts"]}[registry]
        assert not mount.get("readOnly", False), "the cycle writes its builds there"
        volume = {v["name"]: v for v in pod_of_cronjob(out)["volumes"]}[mount["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == "shopper-intent-registry"


def test_the_champion_is_the_build_the_scorers_serve(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    """MODEL_URI comes from the very ConfigMap the scorer and the front door read it from, so
    the cycle compares with whatever model.env says is served, and a promotion moves all three."""
    out = rendered(consumer_overlay)
    container = cycle_container(out)
    source = source_of(out, container, "MODEL_URI")
    assert source == source_of(out, deployment_container(out, SCORER), "MODEL_URI")
    assert source == source_of(out, deployment_container(out, SERVE), "MODEL_URI")
    assert source[0].startswith("scorer-model")
    for name in ("REQUIRE_SIGNED_MODEL", "MODEL_TRUSTED_KEYS"):
        assert environment(out, container).get(name) == environment(
            out, deployment_container(out, SCORER)
        ).get(name), f"{consumer_overlay}: the cycle gates builds as the scorer does ({name})"
    keys = environment(out, container).get("MODEL_TRUSTED_KEYS")
    if keys is not None:
        volume, key = mounted_volume(pod_of_cronjob(out), keys)
        scorer_volume, scorer_key = mounted_volume(
            out.one("Deployment", SCORER)["spec"]["template"]["spec"], keys
        )
        assert (volume["configMap"], key) == (scorer_volume["configMap"], scorer_key)


def test_the_join_rule_is_the_quality_monitors(consumer_overlay: str, rendered: RenderFn) -> None:
    """OUTCOME_TOPIC, OUTCOME_WINDOW and MISSING_OUTCOME come from the monitor's ConfigMap: the
    rows the cycle trains and compares on are labelled as the live figures are."""
    out = rendered(consumer_overlay)
    container = cycle_container(out)
    monitor = deployment_container(out, QUALITY)
    cycle_env, monitor_env = environment(out, container), environment(out, monitor)
    for name in JOIN_RULE:
        assert source_of(out, container, name) == source_of(out, monitor, name), name
        assert cycle_env[name] == monitor_env[name], name
    duration_seconds(cycle_env["OUTCOME_WINDOW"])
    assert cycle_env["MISSING_OUTCOME"] in ("unknown", "negative")


def test_the_collect_reads_kafka_as_the_consumer_does(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    """The brokers, every KAFKA_* property and INPUT_TOPIC are the consumer's; the collect's own
    loader accepts them (none of the properties it sets itself); the credentials files are
    mounted from the retraining's own Secret."""
    out = rendered(consumer_overlay)
    container = cycle_container(out)
    cycle_env = environment(out, container)
    scorer_env = environment(out, deployment_container(out, SCORER))
    kafka = {name: value for name, value in scorer_env.items() if name.startswith("KAFKA_")}
    assert kafka, "the consumer's Kafka settings"
    assert {n: v for n, v in cycle_env.items() if n.startswith("KAFKA_")} == kafka
    assert cycle_env["INPUT_TOPIC"] == scorer_env["INPUT_TOPIC"]
    for name in ("INPUT_FORMAT", "SCHEMA_REGISTRY_SCHEMA_IDS"):
        assert cycle_env.get(name) == scorer_env.get(name), name
    monitor_env = environment(out, deployment_container(out, QUALITY))
    assert cycle_env["KAFKA_BOOTSTRAP_SERVERS"] == monitor_env["KAFKA_BOOTSTRAP_SERVERS"]
    stand_ins = {name: "/dev/null" for name in cycle_env if name.endswith("_FILE")}
    connection = connection_from_environment({**cycle_env, **stand_ins}, RESERVED_PROPERTIES)
    assert connection.kafka_bootstrap_servers == cycle_env["KAFKA_BOOTSTRAP_SERVERS"]
    pod = pod_of_cronjob(out)
    secret_files = [
        v for n, v in cycle_env.items() if n.startswith("KAFKA_") and n.endswith("_FILE")
    ]
    assert secret_files, "SASL credentials from files"
    for path in secret_files:
        volume, key = mounted_volume(pod, path)
        assert volume["secret"]["secretName"] == RETRAIN_SECRET, path
        assert key in [item["path"] for item in volume["secret"]["items"]], path


def test_each_environment_runs_the_same_cycle(rendered: RenderFn) -> None:
    """Only where it writes differs: the object-store component repeats the cycle's arguments
    (a strategic-merge patch replaces the whole list), so they must not drift from the base."""

    def policy(overlay: str) -> list[str]:
        args = list(cycle_container(rendered(overlay))["args"])
        for name in WHERE_OPTIONS:
            if name in args:
                index = args.index(name)
                del args[index : index + 2]
        return args

    assert policy("prod") == policy("dev") == policy("prod-keda")


def test_prod_retrains_every_week_and_dev_on_demand(
    consumer_overlay: str, rendered: RenderFn
) -> None:
    cron = rendered(consumer_overlay).one("CronJob", RETRAIN)["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["schedule"] == "0 3 * * 1"
    assert cron["timeZone"] == "Etc/UTC"
    assert cron.get("suspend", False) is consumer_overlay.startswith("dev")
    job = cron["jobTemplate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    # Exit 2 (bad settings, nothing decided) fails the Job at once; 0 is either verdict.
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {
        "containerName": cycle_container(rendered(consumer_overlay))["name"],
        "operator": "In",
        "values": [2],
    }


def test_a_broken_cronjob_is_refused(rendered: RenderFn, crd_schemas: Schemas) -> None:
    """The validation the overlays pass is not vacuous for the CronJob either."""
    cron = copy.deepcopy(rendered("prod").one("CronJob", RETRAIN))
    cycle_container_ = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    cycle_container_["arg"] = cycle_container_.pop("args")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(cron, crd_schemas)
    cron = copy.deepcopy(rendered("prod").one("CronJob", RETRAIN))
    cron["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rule"] = cron["spec"]["jobTemplate"][
        "spec"
    ]["podFailurePolicy"].pop("rules")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(cron, crd_schemas)


def _env_file(name: str) -> dict[str, str]:
    lines = (K8S_DIR / "base" / name).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def kafka_users() -> list[Manifest]:
    return [doc for doc in render(K8S_DIR / "kafka") if doc["kind"] == "KafkaUser"]


def test_every_kafka_user_validates_against_the_crd_schema(crd_schemas: Schemas) -> None:
    schema = crd_schemas[("kafka.strimzi.io/v1beta2", "KafkaUser")]
    users = kafka_users()
    assert {u["metadata"]["name"] for u in users} >= {SCORER, QUALITY, RETRAIN_USER}
    for user in users:
        jsonschema.Draft202012Validator(schema).validate(user)
        assert user["metadata"]["namespace"] == "kafka"
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"


def test_the_retraining_principal_only_reads_the_input_and_outcome_topics() -> None:
    """Read and Describe on exactly the two topics the collect reads: no Write anywhere, no
    group (it assigns partitions and commits nothing), no other topic, no cluster operation."""
    (user,) = [u for u in kafka_users() if u["metadata"]["name"] == RETRAIN_USER]
    granted = set()
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow"
        resource = acl["resource"]
        for operation in acl["operations"]:
            granted.add(
                (
                    resource["type"],
                    resource.get("name", ""),
                    resource.get("patternType", "literal"),
                    operation,
                )
            )
    topics = (_env_file("consumer.env")["INPUT_TOPIC"], _env_file("quality.env")["OUTCOME_TOPIC"])
    assert granted == {
        ("topic", topic, "literal", operation)
        for topic in topics
        for operation in ("Read", "Describe")
    }


def test_the_operations_guide_names_real_objects(rendered: RenderFn) -> None:
    """Every `deployment/shopper-...` and `cronjob/shopper-...` the guide's commands use exists
    in prod."""
    text = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/-])(deployment|deploy|cronjob)/(shopper-[a-z0-9-]+)", text))
    kinds = {"deployment": "Deployment", "deploy": "Deployment", "cronjob": "CronJob"}
    assert ("cronjob", RETRAIN) in named
    assert {("deployment", SCORER), ("deployment", SERVE)} <= named
    prod = rendered("prod")
    for kind, name in sorted(named):
        assert any(doc["metadata"]["name"] == name for doc in prod.of_kind(kinds[kind])), (
            f"docs/operations.md names {kind}/{name}, which prod does not deploy"
        )
