"""Signed builds against the real consumer process: who may ship a model, not only what it holds.

Whoever can write the registry can replace an artifact and recompute its sha256 in the manifest;
the sha256 gate then passes and ``joblib.load`` runs the attacker's pickle. With
MODEL_TRUSTED_KEYS the signature gate refuses such a build before anything is parsed or loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib

from contract.manifest import sha256_file
from contract.signing import SIGNATURE_NAME, fingerprint, load_signing_key
from tests.builds import MarkerPickle
from tests.integration.consumer.conftest import ConsumerFactory, Topics
from tests.integration.consumer.process import ConsumerProcess
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


def test_signature_gate_refuses_forged_foreign_and_unsigned_builds_and_accepts_rotated_keys(
    model_build: Path, tmp_path: Path, topics: Topics, start_consumer: ConsumerFactory
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("old", "new", "rogue"):
        keygen(keys / f"{name}.pem", keys / f"{name}.pub")
    # During a rotation the scorers trust the old and the new key, one PEM block after another.
    trusted = keys / "trusted.pem"
    trusted.write_bytes((keys / "old.pub").read_bytes() + (keys / "new.pub").read_bytes())

    signed_old = _copy(model_build, tmp_path, "signed-old")
    sign(str(signed_old), keys / "old.pem")
    signed_new = _copy(model_build, tmp_path, "signed-new")
    sign(str(signed_new), keys / "new.pem")
    rogue = _copy(model_build, tmp_path, "signed-by-rogue")
    sign(str(rogue), keys / "rogue.pem")
    unsigned = _copy(model_build, tmp_path, "unsigned")
    # The attack: a signed build whose artifact and manifest were both replaced consistently.
    marker = tmp_path / "forged-pickle-ran"
    forged = _copy(model_build, tmp_path, "forged")
    sign(str(forged), keys / "old.pem")
    _forge(forged, marker)
    assert (forged / SIGNATURE_NAME).exists()
    # Control: the same attack without trusted keys passes the sha256 gate and runs the pickle.
    control_marker = tmp_path / "control-pickle-ran"
    control = _copy(model_build, tmp_path, "forged-control")
    _forge(control, control_marker)

    def start(build: Path, **env: str) -> ConsumerProcess:
        return start_consumer(topics, MODEL_URI=(build / ARTIFACT).as_uri(), **env)

    with_keys = {"MODEL_TRUSTED_KEYS": str(trusted), "REQUIRE_SIGNED_MODEL": "true"}
    refused = {
        "forged (artifact and hash replaced)": start(forged, **with_keys),
        "signed by a key not trusted": start(rogue, **with_keys),
        "unsigned while required": start(unsigned, **with_keys),
    }
    accepted = {
        "old": (start(signed_old, **with_keys), keys / "old.pem"),
        "new": (start(signed_new, **with_keys), keys / "new.pem"),
    }
    unsigned_allowed = start(unsigned)
    control_process = start(control)

    for name, process in refused.items():
        assert process.wait_exit(120) == 3, f"{name}: {process.log_tail()}"
        log = process.log_tail(200)
        assert "model gate 'signature' failed" in log, f"{name}: {log}"
        assert "model gates passed" not in log, name
    assert "not signed" in refused["unsigned while required"].log_tail(200)
    assert "by any trusted key" in refused["signed by a key not trusted"].log_tail(200)
    assert not marker.exists(), "the forged pickle was unpickled"

    for name, (process, private_key) in accepted.items():
        process.wait_ready(120)
        key_id = fingerprint(load_signing_key(private_key).public_key())
        assert f"manifest signature verified key={key_id}" in process.log_tail(200), name
        assert process.terminate() == 0, name

    unsigned_allowed.wait_ready(120)
    assert "MODEL_TRUSTED_KEYS is not set" in unsigned_allowed.log_tail(200)
    assert unsigned_allowed.terminate() == 0

    # The control ran the attacker's code (and then failed the load gate: no predict_proba).
    assert control_process.wait_exit(120) == 3, control_process.log_tail()
    assert control_marker.exists(), "the control pickle should have run without trusted keys"
