"""Builds in a real S3 server (S3Proxy): train into it, list it, serve from it, and refuse it.

One build is trained into the session's S3 server with ``--data s3://`` and ``--out s3://``;
the consumer then serves it by an ``s3://`` MODEL_URI, and every way a fetch can go wrong
stops the consumer with exit 3 at the gate ``fetch`` (or ``sha256``) before anything is read.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest

from consumer.settings import load_settings
from contract.frame import events_to_frame
from contract.schema import SessionEvent
from contract.storage import Store
from scoring.errors import GateError
from scoring.fetch import load_model
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.doctored import Marker
from tests.integration.consumer.kafka_io import produce_events, read_topic, synthetic_events
from tests.integration.s3 import LocalS3
from training.__main__ import main as train_main
from training.artifact import BuildExistsError, upload_build
from training.synthetic import generate_sessions

FULL = "best_model_full.joblib"
OTHER = "best_model_no_page_values.joblib"


def _train_into(
    s3_server: LocalS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """Train from s3://bucket/data/ into s3://bucket/registry; return (registry, build_id)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    data = tmp_path / "sessions.csv"
    generate_sessions(1500, seed=7).to_csv(data, index=False)
    s3_server.client().upload_file(str(data), bucket, "data/sessions.csv")
    registry = f"s3://{bucket}/registry"
    status = train_main(
        [
            "--data",
            f"s3://{bucket}/data/sessions.csv",
            "--out",
            registry,
            "--n-iter",
            "1",
            "--families",
            "xgboost",
        ]
    )
    assert status == 0
    (build_id,) = Store(s3_server.options()).children(registry)
    return registry, build_id


def test_train_list_and_serve_from_s3(
    s3_server: LocalS3,
    s3_bucket: str,
    kafka_bootstrap: str,
    topics: Topics,
    start_consumer: ConsumerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, build_id = _train_into(s3_server, s3_bucket, tmp_path, monkeypatch)
    client = s3_server.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert f"registry/{build_id}/manifest.json" in keys
    assert f"registry/{build_id}/{FULL}" in keys

    # A build whose upload stopped before its manifest: absent for readers.
    unfinished = "20000101T000000Z-deadbeef"
    client.copy_object(
        Bucket=s3_bucket,
        Key=f"registry/{unfinished}/{FULL}",
        CopySource={"Bucket": s3_bucket, "Key": f"registry/{build_id}/{FULL}"},
    )
    capsys.readouterr()
    assert train_main(["builds", "--registry", registry]) == 0
    listing = capsys.readouterr().out
    primary_uri = f"{registry}/{build_id}/{FULL}"
    shadow_uri = f"{registry}/{build_id}/{OTHER}"
    assert f"MODEL_URI={primary_uri}" in listing
    assert f"MODEL_URI={shadow_uri}" in listing
    assert "XGBClassifier" in listing
    assert "roc_auc=" in listing
    assert f"ignored {unfinished}: no manifest.json" in listing
    assert f"MODEL_URI={registry}/{unfinished}" not in listing

    events = synthetic_events(300, seed=31)
    produce_events(kafka_bootstrap, topics.input, events)
    cache = tmp_path / "cache"
    consumer = start_consumer(
        topics,
        MODEL_URI=primary_uri,
        SHADOW_MODEL_URI=shadow_uri,
        MODEL_CACHE_DIR=str(cache),
        **s3_server.env(),
    )
    consumer.wait_ready(120)
    records = read_topic(kafka_bootstrap, topics.output, expected=len(events))
    online = {r.json()["session_id"]: r.json()["probability"] for r in records}
    assert set(online) == {e["session_id"] for e in events}

    local = tmp_path / "offline.joblib"
    client.download_file(s3_bucket, f"registry/{build_id}/{FULL}", str(local))
    validated = [SessionEvent.model_validate(e) for e in events]
    offline = joblib.load(local).predict_proba(events_to_frame(validated))[:, 1]
    np.testing.assert_allclose(
        [online[e.session_id] for e in validated], offline, rtol=0, atol=1e-12
    )
    assert {r.json()["model_build_id"] for r in records} == {build_id}
    assert (cache / s3_bucket / "registry" / build_id / "manifest.json").is_file()
    info = [line for line in consumer.http("/metrics")[1].splitlines() if "model_info{" in line]
    for role, variant in (("primary", "full"), ("shadow", "no_page_values")):
        wanted = (f'role="{role}"', f'build_id="{build_id}"', f'variant="{variant}"')
        assert any(all(w in line for w in wanted) and line.endswith(" 1.0") for line in info)
    assert consumer.terminate() == 0


def test_fetch_failures_stop_at_the_gate_and_nothing_is_loaded(
    s3_server: LocalS3,
    s3_bucket: str,
    kafka_bootstrap: str,
    model_build: Path,
    topics: Topics,
    start_consumer: ConsumerFactory,
    tmp_path: Path,
) -> None:
    client = s3_server.client()
    store = Store(s3_server.options())
    complete = f"s3://{s3_bucket}/builds/{model_build.name}"
    for path in sorted(model_build.glob("*.j*")):  # the artifacts and manifest.json
        store.put_file(path, f"{complete}/{path.name}")
    # Replaced in the bucket after training: the manifest keeps the original hash.
    tampered = f"s3://{s3_bucket}/tampered/{model_build.name}"
    marker = tmp_path / "unpickled-marker"
    joblib.dump(Marker(marker), tmp_path / "marker.joblib")
    store.put_file(model_build / "manifest.json", f"{tampered}/manifest.json")
    client.upload_file(
        str(tmp_path / "marker.joblib"), s3_bucket, f"tampered/{model_build.name}/{FULL}"
    )
    # An upload that stopped before its manifest.
    unfinished = f"s3://{s3_bucket}/unfinished/{model_build.name}"
    store.put_file(model_build / FULL, f"{unfinished}/{FULL}")
    produce_events(kafka_bootstrap, topics.input, synthetic_events(20, seed=5, prefix="f"))

    nobody_listens = "http://127.0.0.1:9"  # the discard port: nothing answers there
    cases = {
        "wrong credentials": (f"{complete}/{FULL}", {"AWS_SECRET_ACCESS_KEY": "wrong"}, "fetch"),
        "missing object": (f"{complete}/best_model_absent.joblib", {}, "fetch"),
        "store down": (f"{complete}/{FULL}", {"AWS_ENDPOINT_URL_S3": nobody_listens}, "fetch"),
        "build without manifest": (f"{unfinished}/{FULL}", {}, "fetch"),
        "artifact replaced": (f"{tampered}/{FULL}", {}, "sha256"),
    }
    expected_message = {
        "wrong credentials": "wrong credentials after 2 attempts",
        "missing object": "missing object after 2 attempts",
        "store down": "store unreachable after 2 attempts",
        "build without manifest": "missing manifest (the build is absent or unfinished)",
        "artifact replaced": "has sha256",
    }
    # Each case through the consumer's own fetch-and-gate call, in this process...
    for i, (name, (uri, overrides, gate)) in enumerate(cases.items()):
        settings = load_settings(
            {
                "MODEL_URI": uri,
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "MODEL_FETCH_ATTEMPTS": "2",
                "MODEL_CACHE_DIR": str(tmp_path / f"cache-{i}"),
                **s3_server.env(**overrides),
            }
        )
        with pytest.raises(GateError) as refused:
            load_model(settings.model_uri, settings, Store(settings.object_store))
        assert refused.value.gate == gate, name
        assert expected_message[name] in str(refused.value), f"{name}: {refused.value}"
    assert not marker.exists(), "the replaced artifact was unpickled"

    # ... and one as a real process: exit 3 before the loop starts.
    process = start_consumer(
        topics,
        group="fetch-refused",
        MODEL_URI=f"{complete}/{FULL}",
        MODEL_FETCH_ATTEMPTS="2",
        MODEL_CACHE_DIR=str(tmp_path / "cache-process"),
        **s3_server.env(AWS_SECRET_ACCESS_KEY="wrong"),
    )
    assert process.wait_exit(120) == 3, process.log_tail()
    log = process.log_tail(200)
    assert "model gate 'fetch' failed: wrong credentials after 2 attempts" in log, log
    assert "model gates passed" not in log
    assert "scoring input=" not in log  # the loop never started: nothing consumed


def test_a_build_id_is_never_overwritten(
    s3_server: LocalS3, s3_bucket: str, model_build: Path
) -> None:
    store = Store(s3_server.options())
    registry = f"s3://{s3_bucket}/registry"
    build_uri = upload_build(model_build, registry, store)
    assert build_uri == f"{registry}/{model_build.name}"
    client = s3_server.client()
    manifest_key = f"registry/{model_build.name}/manifest.json"
    etag = client.head_object(Bucket=s3_bucket, Key=manifest_key)["ETag"]
    with pytest.raises(BuildExistsError):
        upload_build(model_build, registry, store)
    assert client.head_object(Bucket=s3_bucket, Key=manifest_key)["ETag"] == etag
    # Not even over a half-uploaded build (objects but no manifest yet).
    partial = f"s3://{s3_bucket}/partial"
    store.put_file(model_build / FULL, f"{partial}/{model_build.name}/{FULL}")
    with pytest.raises(BuildExistsError):
        upload_build(model_build, partial, store)
    assert not store.exists(f"{partial}/{model_build.name}/manifest.json")
