"""``python -m training compare`` on builds and data in a real S3 server (S3Proxy): the same
fetch and gates as the consumer's, through ``contract.storage``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from xgboost import XGBClassifier

from contract.pipeline import build_pipeline
from contract.signing import generate_key_pair, load_signing_key
from contract.storage import Store
from tests.builds import write_pipeline_build
from tests.integration.s3 import LocalS3
from training.artifact import upload_build
from training.compare import EXIT_NOT_WORSE, EXIT_UNDECIDED, main
from training.data import split_features_label
from training.synthetic import generate_sessions

FULL = "best_model_full.joblib"


def test_compare_signed_builds_and_data_from_s3(
    s3_server: LocalS3,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    private, public = generate_key_pair()
    (tmp_path / "signing.pem").write_bytes(private)
    (tmp_path / "trusted.pem").write_bytes(public)
    X, y = split_features_label(generate_sessions(1000, seed=1))
    model = XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1, random_state=0)
    pipeline = build_pipeline(model, "full").fit(X, y)
    artifact = write_pipeline_build(
        tmp_path / "registry",
        pipeline,
        X,
        y,
        0.4,
        signing_key=load_signing_key(tmp_path / "signing.pem"),
    )
    store = Store(s3_server.options())
    build_uri = upload_build(artifact.parent, f"s3://{s3_bucket}/registry", store)
    generate_sessions(2000, seed=2).to_csv(tmp_path / "fresh.csv", index=False)
    s3_server.client().upload_file(str(tmp_path / "fresh.csv"), s3_bucket, "data/fresh.csv")

    def compare(champion: str, report: str) -> int:
        return main(
            ["--champion", champion, "--challenger", artifact.as_uri(),
             "--data", f"s3://{s3_bucket}/data/fresh.csv", "--trusted-keys",
             str(tmp_path / "trusted.pem"), "--bootstrap", "100",
             "--report", str(tmp_path / report)]
        )  # fmt: skip

    # The same build from the bucket and from the disk: fetched, verified, not worse.
    assert compare(f"{build_uri}/{FULL}", "same") == EXIT_NOT_WORSE
    result = json.loads((tmp_path / "same" / "comparison.json").read_text())
    assert result["champion"]["uri"] == f"{build_uri}/{FULL}"
    assert result["champion"]["signed_by"] == result["challenger"]["signed_by"]
    assert result["data"]["uri"] == f"s3://{s3_bucket}/data/fresh.csv"
    assert result["data"]["rows"] == 2000
    assert all(d["upper"] == 0 for d in result["differences"].values())

    # Someone with write access to the bucket replaces the artifact: refused before loading.
    key = f"{build_uri.removeprefix(f's3://{s3_bucket}/')}/{FULL}"
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=b"not the signed artifact")
    capsys.readouterr()
    assert compare(f"{build_uri}/{FULL}", "tampered") == EXIT_UNDECIDED
    error = capsys.readouterr().err
    assert "model gate 'sha256' failed: the champion" in error
    assert s3_server.env()["AWS_SECRET_ACCESS_KEY"] not in error
    assert not (tmp_path / "tampered").exists()
