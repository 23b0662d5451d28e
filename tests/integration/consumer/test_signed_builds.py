"""Signed builds against the real consumer process: who may ship a model, not only what it holds.

Whoever can write the registry can replace an artifact and recompute its sha256 in the manifest;
the sha256 gate then passes and ``joblib.load`` runs the attacker's pickle. With
MODEL_TRUSTED_KEYS the signature gate refuses such a build before anything is parsed or loaded.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import joblib
import pytest

from contract.manifest import sha256_file
from contract.signing import SIGNATURE_NAME, fingerprint, load_signing_key
from scoring.errors import GateError
from scoring.gates import load_checked_model
from tests.builds import MarkerPickle
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from training.keys import keygen, sign

ARTIFACT = "best_model_full.joblib"


def _copy(model_build: Path, root: Path, name: str) -> Path:
    build = root / "registry" / name
    shutil.copytree(model_build, build)
    return build


def _forge(build: Path, marker: Path) -> None:
    """Replace the artifact by a code-running pickle and rewrite the manifest to match it."""
    artifact = build / ARTIFACT
    artifact.chmod(0o644)
    joblib.dump(MarkerPickle(marker), artifact)
    manifest_path = build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"][ARTIFACT]["sha256"] = sha256_file(artifact)
    manifest["artifacts"][ARTIFACT]["size_bytes"] = artifact.stat().st_size
    manifest_path.chmod(0o644)
    manifest_path.write_text(json.dumps(manifest))


@dataclass(frozen=True)
class Keys:
    old: Path
    new: Path
    rogue: Path
    trusted: Path  # old and new public keys, one PEM block after another (a rotation)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    root = tmp_path / "keys"
    root.mkdir()
    for name in ("old", "new", "rogue"):
        keygen(root / f"{name}.pem", root / f"{name}.pub")
    trusted = root / "trusted.pem"
    trusted.write_bytes((root / "old.pub").read_bytes() + (root / "new.pub").read_bytes())
    return Keys(root / "old.pem", root / "new.pem", root / "rogue.pem", trusted)


def _signed(model_build: Path, root: Path, name: str, key: Path | None) -> Path:
    build = _copy(model_build, root, name)
    if key is not None:
        sign(str(build), key)
    return build


def test_consumer_refuses_a_forged_build_without_running_it_and_serves_a_signed_one(
    model_build: Path,
    tmp_path: Path,
    keys: Keys,
    topics: Topics,
    start_consumer: ConsumerFactory,
) -> None:
    """The attack end to end: a signed build whose artifact and manifest were both replaced."""
    marker = tmp_path / "forged-pickle-ran"
    forged = _signed(model_build, tmp_path, "forged", keys.old)
    _forge(forged, marker)
    assert (forged / SIGNATURE_NAME).exists()
    signed = _signed(model_build, tmp_path, "signed-new", keys.new)
    with_keys = {"MODEL_TRUSTED_KEYS": str(keys.trusted), "REQUIRE_SIGNED_MODEL": "true"}

    refused = start_consumer(topics, MODEL_URI=(forged / ARTIFACT).as_uri(), **with_keys)
    served = start_consumer(topics, MODEL_URI=(signed / ARTIFACT).as_uri(), **with_keys)

    assert refused.wait_exit(120) == 3, refused.log_tail()
    log = refused.log_tail(200)
    assert "model gate 'signature' failed" in log, log
    assert "model gates passed" not in log
    assert not marker.exists(), "the forged pickle was unpickled"
    served.wait_ready(120)
    key_id = fingerprint(load_signing_key(keys.new).public_key())
    assert f"manifest signature verified key={key_id}" in served.log_tail(200)
    assert served.terminate() == 0


def test_the_signature_gate_on_every_kind_of_build(
    model_build: Path, tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """The gates as the consumer runs them (in this process: each case costs no interpreter)."""
    control_marker = tmp_path / "control-pickle-ran"
    control = _signed(model_build, tmp_path, "forged-control", None)
    _forge(control, control_marker)
    # Without trusted keys the forgery passes the sha256 gate and its pickle runs: the attack is
    # real, and only the signature stops it.
    with pytest.raises(GateError) as caught:
        load_checked_model(control / ARTIFACT)
    assert caught.value.gate == "load"
    assert control_marker.exists()

    refused = {
        "signed by a key not trusted": (keys.rogue, "by any trusted key"),
        "unsigned while keys are trusted": (None, "not signed"),
    }
    for name, (key, reason) in refused.items():
        build = _signed(model_build, tmp_path, name.replace(" ", "-"), key)
        with pytest.raises(GateError) as caught:
            load_checked_model(build / ARTIFACT, trusted_keys=keys.trusted)
        assert caught.value.gate == "signature", name
        assert reason in caught.value.reason, name

    # During a rotation builds signed by either trusted key are served.
    for name, key in (("old", keys.old), ("new", keys.new)):
        build = _signed(model_build, tmp_path, f"rotation-{name}", key)
        scorer = load_checked_model(build / ARTIFACT, trusted_keys=keys.trusted)
        assert scorer.info.variant == "full", name

    # Not required (no trusted keys): an unsigned build is served, with a warning.
    unsigned = _signed(model_build, tmp_path, "unsigned-allowed", None)
    with caplog.at_level(logging.WARNING, logger="scoring.gates"):
        load_checked_model(unsigned / ARTIFACT)
    assert "MODEL_TRUSTED_KEYS is not set" in caplog.text
