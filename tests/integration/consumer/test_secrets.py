"""No secret is ever printed: not in a log line at DEBUG (librdkafka's debug included), a metric,
a health body or a dead-letter header.

One run of each process that holds a secret: `python -m training sign` signing a build at DEBUG,
and the consumer serving that build over SASL_SSL + SCRAM at DEBUG with `KAFKA_DEBUG=all`.
(The training job signs through the same key loading and signing code; its own run is checked
in tests/unit/training/test_train_run.py.)
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from benchmarks.replay import KeyValue, event_messages, produce_messages, read_topic
from contract.signing import load_signing_key
from tests.integration.broker import SASL_PASSWORD, SecureCluster
from tests.integration.consumer.conftest import ConsumerFactory
from tests.integration.consumer.kafka_io import synthetic_events
from tests.integration.consumer.process import REPO
from tests.integration.consumer.test_tls_acl import scorer_env, secure_topics
from training.keys import keygen


def _key_forms(private_key: Path) -> list[str]:
    """Every form a leaked signing key could take: its PEM body, raw bytes in hex and base64."""
    pem_body = [
        line
        for line in private_key.read_text().splitlines()
        if line.strip() and not line.startswith("-----")
    ]
    key = load_signing_key(private_key)
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return [*pem_body, raw.hex(), base64.b64encode(raw).decode()]


def _sign_at_debug(model_build: Path, root: Path, private_key: Path) -> tuple[Path, str]:
    """A copy of the session's build signed by the real CLI at DEBUG; returns it and the output."""
    build = root / "registry" / model_build.name
    shutil.copytree(model_build, build)
    argv = [sys.executable, "-m", "training", "sign", "--build", str(build),
            "--signing-key", str(private_key), "--log-level", "DEBUG"]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return build, output


def test_no_password_or_signing_key_in_logs_metrics_health_or_dead_letters(
    kafka_secure: SecureCluster,
    start_consumer: ConsumerFactory,
    model_build: Path,
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    keygen(keys / "signing.pem", keys / "trusted.pem")
    build, training_output = _sign_at_debug(model_build, tmp_path, keys / "signing.pem")
    assert "DEBUG training.keys signing build=" in training_output  # the key was used, at DEBUG

    topics, group = secure_topics(kafka_secure)
    admin = kafka_secure.client_config()
    events = synthetic_events(30, seed=71, prefix="secret")
    bad: list[KeyValue] = [(b"bad-json", b"{oops"), (b"bad-field", b'{"session_id": 5}')]
    produce_messages(kafka_secure.bootstrap, topics.input, [*event_messages(events), *bad], admin)
    env = scorer_env(
        kafka_secure,
        topics,
        group,
        tmp_path,
        MODEL_URI=(build / "best_model_full.joblib").as_uri(),
        MODEL_TRUSTED_KEYS=str(keys / "trusted.pem"),
        REQUIRE_SIGNED_MODEL="true",
        LOG_LEVEL="DEBUG",
        KAFKA_DEBUG="all",
    )
    consumer = start_consumer(topics, group=group, **env)
    consumer.wait_ready(120)
    scored = read_topic(kafka_secure.bootstrap, topics.output, len(events), extra_config=admin)
    dead = read_topic(kafka_secure.bootstrap, topics.dlq, len(bad), extra_config=admin)
    bodies = {path: consumer.http(path)[1] for path in ("/metrics", "/healthz", "/readyz")}
    assert consumer.terminate() == 0
    log = consumer.log_path.read_text(errors="replace")
    assert len(scored) == len(events)
    assert len(dead) == len(bad)
    # The checks below can fail: the log holds librdkafka's SASL/SSL debug and our DEBUG lines.
    assert "SCRAM-SHA-512" in log
    assert "SSL" in log
    assert '"level": "DEBUG"' in log or '"level":"DEBUG"' in log

    headers = "\n".join(
        f"{name}={value!r}" for record in dead for name, value in record.headers.items()
    )
    places = {"consumer log": log, "training output": training_output, "dead letters": headers}
    places.update(bodies)
    secrets = {"SASL password": [SASL_PASSWORD], "signing key": _key_forms(keys / "signing.pem")}
    # Hook for the object store (S3) work: once the consumer reads builds from S3, add the S3
    # secret access key here, e.g. secrets["S3 secret key"] = [S3_SECRET_ACCESS_KEY], and pass
    # it to the consumer above through its *_FILE variable.
    leaks = [
        f"{what} found in {where}"
        for what, forms in secrets.items()
        for where, text in places.items()
        if any(form in text for form in forms)
    ]
    assert not leaks, leaks
