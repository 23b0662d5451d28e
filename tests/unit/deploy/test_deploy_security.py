"""Security in the manifests: prod serves only signed builds, only training holds the signing key,
and the scorer's Kafka principal (a Strimzi KafkaUser) has exactly its least-privilege ACLs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest

from contract.signing import load_trusted_keys
from tests.unit.deploy.conftest import K8S_DIR, SCORER, SERVE, render

Rendered = Any  # conftest.Rendered
RenderFn = Callable[[str], Rendered]
Schemas = dict[tuple[str, str], dict[str, Any]]
SIGNING_SECRET = "shopper-intent-signing-key"


def _consumer_env() -> dict[str, str]:
    lines = (K8S_DIR / "base" / "consumer.env").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def _kafka_user(name: str = SCORER) -> dict[str, Any]:
    (user,) = [u for u in render(K8S_DIR / "kafka") if u["metadata"]["name"] == name]
    return user


def test_kafka_user_validates_against_the_crd_schema(crd_schemas: Schemas) -> None:
    user = _kafka_user()
    schema = crd_schemas[("kafka.strimzi.io/v1beta2", "KafkaUser")]
    jsonschema.Draft202012Validator(schema).validate(user)
    assert user["metadata"]["namespace"] == "kafka"
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    broken = copy.deepcopy(user)
    broken["spec"]["authorization"]["acls"][0]["operations"] = ["Everything"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)
    broken = copy.deepcopy(user)
    broken["spec"]["authorization"]["acls"][0]["resource"]["pattern"] = "literal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def test_kafka_user_grants_exactly_what_the_scorer_needs() -> None:
    """The same set kafka.sh grants (deploy/local/Acls.java), on the names the scorer uses."""
    env = _consumer_env()
    group = env["CONSUMER_GROUP"]
    expected = {
        ("topic", env["INPUT_TOPIC"], "literal", "Read"),
        ("group", group, "literal", "Read"),
        ("topic", env["OUTPUT_TOPIC"], "literal", "Write"),
        ("topic", env["OUTPUT_TOPIC"], "literal", "Describe"),
        ("topic", env["DLQ_TOPIC"], "literal", "Write"),
        ("topic", env["DLQ_TOPIC"], "literal", "Describe"),
        # TRANSACTIONAL_ID defaults to <CONSUMER_GROUP>-<hostname>: one id per replica.
        ("transactionalId", f"{group}-", "prefix", "Write"),
        ("transactionalId", f"{group}-", "prefix", "Describe"),
        ("cluster", "", "literal", "IdempotentWrite"),
    }
    granted = set()
    for acl in _kafka_user()["spec"]["authorization"]["acls"]:
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
    assert granted == expected


def _mount_of(pod: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The volume holding file `path` in the pod's first container, and the file's key in it."""
    for mount in pod["containers"][0].get("volumeMounts", []):
        root = PurePosixPath(mount["mountPath"])
        if root in PurePosixPath(path).parents:
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            return volume, str(PurePosixPath(path).relative_to(root))
    raise AssertionError(f"nothing is mounted at {path}")


@pytest.mark.parametrize("workload", [SCORER, SERVE])
@pytest.mark.parametrize("prod_overlay", ["prod", "prod-keda"])
def test_prod_serves_only_builds_signed_by_a_trusted_key(
    prod_overlay: str, workload: str, rendered: RenderFn, tmp_path: Path
) -> None:
    """Both the consumer and the HTTP front door refuse unsigned builds in prod."""
    out = rendered(prod_overlay)
    pod = out.one("Deployment", workload)["spec"]["template"]["spec"]
    sources = {
        ref["configMapRef"]["name"]
        for ref in pod["containers"][0].get("envFrom", [])
        if "configMapRef" in ref
    }
    (config,) = [
        c
        for c in out.of_kind("ConfigMap")
        if c["metadata"]["name"] in sources and "REQUIRE_SIGNED_MODEL" in c["data"]
    ]
    assert config["data"]["REQUIRE_SIGNED_MODEL"] == "true"
    volume, key = _mount_of(pod, config["data"]["MODEL_TRUSTED_KEYS"])
    configs = {c["metadata"]["name"]: c["data"] for c in out.of_kind("ConfigMap")}
    keys_file = tmp_path / "trusted-keys.pem"
    keys_file.write_text(configs[volume["configMap"]["name"]][key])
    assert load_trusted_keys(keys_file), "the trusted-keys ConfigMap holds no Ed25519 key"
    # The scorer never sees the signing key.
    assert all(v.get("secret", {}).get("secretName") != SIGNING_SECRET for v in pod["volumes"])


@pytest.mark.parametrize(("prod_overlay", "kind"), [("prod", "CronJob"), ("prod/train", "Job")])
def test_prod_training_signs_with_the_key_from_its_secret(
    prod_overlay: str, kind: str, rendered: RenderFn
) -> None:
    workload = rendered(prod_overlay).one(kind)["spec"]
    if kind == "CronJob":
        workload = workload["jobTemplate"]["spec"]
    pod = workload["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
    volume, key = _mount_of(pod, env["MODEL_SIGNING_KEY_FILE"])
    assert volume["secret"]["secretName"] == SIGNING_SECRET
    assert [item["path"] for item in volume["secret"]["items"]] == [key]
